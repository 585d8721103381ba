using System.CommandLine;
using System.Globalization;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics train-vae --data DIR --output DIR`: trains a small AutoencoderKL on a folder of images and writes a
/// diffusers VAE folder with card.md. Run again to resume from OUTPUT/checkpoint.safetensors. Exit 0 when done (or
/// stopped by --stop-after), 2 on bad input, 1 on a training failure.
/// </summary>
public static class TrainVaeCommand
{
    /// <summary>Builds the `train-vae` verb.</summary>
    public static Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Training images (PNG/JPEG, searched recursively), each at least --resolution square" };
        var output = new Option<DirectoryInfo>("--output") { HelpName = "DIR", Required = true, Description = "Output: config.json, diffusion_pytorch_model.safetensors, card.md, checkpoint.safetensors" };
        var decoder = new Option<string>("--decoder") { HelpName = "nearest|transpose", Description = "Decoder upsampler: nearest + conv (diffusers) or ConvTranspose2d", DefaultValueFactory = _ => "nearest" };
        var channels = new Option<string>("--channels") { HelpName = "C1,C2,..", Description = "block_out_channels (n levels downsample by 2^(n-1))", DefaultValueFactory = _ => "32,64,64" };
        var layers = new Option<int>("--layers-per-block") { HelpName = "N", DefaultValueFactory = _ => 1 };
        var groups = new Option<int>("--norm-groups") { HelpName = "N", DefaultValueFactory = _ => 16 };
        var latent = new Option<int>("--latent-channels") { HelpName = "N", DefaultValueFactory = _ => 4 };
        var noAttention = new Option<bool>("--no-mid-attention") { Description = "Drop the mid blocks' self-attention" };
        var resolution = new Option<int>("--resolution") { HelpName = "PX", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { HelpName = "N", DefaultValueFactory = _ => 2000 };
        var batch = new Option<int>("--batch") { HelpName = "N", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { HelpName = "X", DefaultValueFactory = _ => 1e-3 };
        var loss = new Option<string>("--loss") { HelpName = "l1|mse", DefaultValueFactory = _ => "l1" };
        var klWeight = new Option<double>("--kl-weight") { HelpName = "X", Description = "KL weight against the per-image summed reconstruction loss (LDM: 1e-6)", DefaultValueFactory = _ => 1e-6 };
        var name = new Option<string>("--name") { HelpName = "NAME", DefaultValueFactory = _ => "vae" };
        var common = new CommonTrainingOptions();

        var cmd = new Command("train-vae", "Train a small AutoencoderKL (diffusers layout) on a folder of images")
        {
            data, output, decoder, channels, layers, groups, latent, noAttention, resolution, steps, batch, lr, loss, klWeight, name,
        };
        common.AddTo(cmd);
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            return Task.FromResult(CommonTrainingOptions.Guard("train-vae", config.Error, () =>
            {
                var options = new VaeTrainOptions(parse.GetRequiredValue(data).FullName, parse.GetRequiredValue(output).FullName)
                {
                    Name = parse.GetValue(name)!,
                    Decoder = parse.GetValue(decoder)!,
                    BlockOutChannels = CommonTrainingOptions.IntList(parse.GetValue(channels)!, "--channels"),
                    LayersPerBlock = parse.GetValue(layers),
                    NormNumGroups = parse.GetValue(groups),
                    LatentChannels = parse.GetValue(latent),
                    MidBlockAttention = !parse.GetValue(noAttention),
                    Resolution = parse.GetValue(resolution),
                    Steps = parse.GetValue(steps),
                    BatchSize = parse.GetValue(batch),
                    LearningRate = parse.GetValue(lr),
                    Loss = parse.GetValue(loss)!,
                    KlWeight = parse.GetValue(klWeight),
                    Seed = parse.GetValue(common.Seed),
                    CheckpointEvery = parse.GetValue(common.CheckpointEvery),
                    StopAfter = parse.GetValue(common.StopAfter),
                    Source = CommonTrainingOptions.SourceLine(),
                };
                common.LoadTorch(parse);
                var result = VaeTrainer.Run(options, config.Output, ct);
                config.Output.WriteLine(CommonTrainingOptions.Summary("train-vae", result));
            }));
        });
        return cmd;
    }
}

/// <summary>Options and error handling shared by train-vae, train-ldm, train-gan and sample.</summary>
internal sealed class CommonTrainingOptions
{
    /// <summary>Exit code of bad input.</summary>
    public const int InputError = 2;

    public Option<long> Seed { get; } = new("--seed") { HelpName = "N", Description = "Seed of the initial weights and of every step's draws", DefaultValueFactory = _ => 0 };
    public Option<int> CheckpointEvery { get; } = new("--checkpoint-every") { HelpName = "N", Description = "Steps between checkpoints", DefaultValueFactory = _ => 100 };
    public Option<int?> StopAfter { get; } = new("--stop-after") { HelpName = "N", Description = "Stop after N steps of this run (resume by running again)" };
    public Option<int> Threads { get; } = new("--threads") { HelpName = "N", Description = "Torch intra-op threads (0: torch's default)" };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Seed);
        cmd.Options.Add(CheckpointEvery);
        cmd.Options.Add(StopAfter);
        cmd.Options.Add(Threads);
    }

    public void LoadTorch(ParseResult parse) => TorchRuntime.EnsureLoaded(new TorchOptions { Threads = parse.GetValue(Threads) });

    /// <summary>Runs <paramref name="body"/>; bad input is reported on <paramref name="error"/> with exit 2, failures with 1.</summary>
    public static int Guard(string verb, TextWriter error, Action body)
    {
        try
        {
            body();
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or NotSupportedException)
        {
            error.WriteLine($"forensics {verb}: {e.Message}");
            return e is ImageDecodeException or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException ? InputError : 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine($"forensics {verb}: cancelled; run again to resume from the last checkpoint");
            return 1;
        }
        catch (InvalidOperationException e)
        {
            error.WriteLine($"forensics {verb}: {e.Message}");
            return 1;
        }
    }

    public static int[] IntList(string text, string option)
    {
        try { return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new ArgumentException($"{option} must be a comma-separated list of integers, not '{text}'"); }
    }

    /// <summary>The command line as typed (for model cards).</summary>
    public static string SourceLine() =>
        "forensics " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(a => a.Any(char.IsWhiteSpace) || a.Length == 0 ? $"\"{a}\"" : a));

    public static string Summary(string verb, GeneratorTrainingResult r) => r.Finished
        ? string.Create(CultureInfo.InvariantCulture,
            $"{verb}: done, {r.Step} steps ({r.StepsPerSecond:F2} steps/s this run), final loss {(r.Losses.Count > 0 ? r.Losses[^1] : double.NaN):G5}; output {r.Output}")
        : string.Create(CultureInfo.InvariantCulture,
            $"{verb}: stopped at step {r.Step} ({r.StepsPerSecond:F2} steps/s); run the same command again to resume from {r.Output}");
}
