using Forensics.ML.Evaluation;

namespace Forensics.ML.Protocols;

/// <summary>
/// Progress of a protocol that scores several image sets in turn (cross-generator: test then validation; a sweep: one
/// pass per severity). <paramref name="Done"/> and <paramref name="Total"/> count images over the whole protocol, so
/// Done/Total tracks the work; <paramref name="Stage"/> names the pass under way ("test", "jpeg 70").
/// </summary>
public sealed record ProtocolProgress(string Stage, int Done, int Total);

/// <summary>Forwards one scoring pass's <see cref="EvalProgress"/> as protocol-wide counts, on the caller's thread.</summary>
internal sealed class PassProgress(IProgress<ProtocolProgress> outer, string stage, int offset, int total) : IProgress<EvalProgress>
{
    public void Report(EvalProgress value) => outer.Report(new ProtocolProgress(stage, offset + value.Done, total));
}
