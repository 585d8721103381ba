using System.CommandLine;
using Forensics.Cli.Commands;
using Forensics.ML.Lare2;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Tests.Training;

namespace Forensics.ML.Tests.Lare2;

/// <summary>`forensics train --arch lare2` and its output through `forensics eval --arch lare2`.</summary>
public sealed class Lare2TrainCommandTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "lare2cli-" + Guid.NewGuid().ToString("N"));

    public Lare2TrainCommandTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded);

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var command = new RootCommand("test") { TrainCommand.Create(), EvalCommand.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private string P(string name) => Path.Combine(root, name);

    [Fact]
    public void Trains_with_maps_and_ablation_and_the_best_weights_evaluate()
    {
        Lare2Fixtures.Write(P("train"), P("lare-train"), perClass: 4, size: 72, seed: 5);
        Lare2Fixtures.Write(P("val"), P("lare-val"), perClass: 2, size: 72, seed: 6);
        string[] common = ["train", "--arch", "lare2", "--train", P("train"), "--val", P("val"), "--out", P("out"), "--lare", P("lare-train"),
            "--val-lare", P("lare-val"), "--width", "16", "--layers", "1,1,1,1", "--crop", "64", "--batch", "4", "--epochs", "1",
            "--workers", "1", "--threads", "1"];
        var (exit, output, error) = Invoke([.. common, "--ablation", "no-channel"]);
        Assert.True(exit == 0, error + output);
        Assert.Contains("ablation NoChannel", output);
        Assert.Contains("epoch 1:", output);
        using (var model = Lare2Classifier.Load(P("out/best.safetensors")))
            Assert.Equal(64, model.Options.Backbone.InputResolution);
        Assert.Equal(1, Lare2Checkpoint.ReadInfo(P("out/checkpoint.safetensors")).Epoch);

        // Another ablation is another trajectory: the checkpoint refuses it.
        (exit, _, error) = Invoke([.. common.Select(a => a == "1" ? "2" : a), "--ablation", "zero-lare"]);
        Assert.Equal(2, exit);
        Assert.Contains("other training options", error);

        (exit, output, error) = Invoke("eval", "--checkpoint", P("out/best.safetensors"), "--arch", "lare2", "--lare", P("lare-val"),
            "--data", P("val"), "--out", P("eval"), "--crop", "64", "--bootstrap", "0");
        Assert.True(exit == 0, error + output);
        Assert.True(File.Exists(P("eval/scores.csv")));
    }

    [Fact]
    public void Bad_lare2_arguments_are_named()
    {
        Lare2Fixtures.Write(P("train"), P("lare"), perClass: 2, size: 64, seed: 5);
        Lare2Fixtures.Write(P("val"), P("lare-val"), perClass: 1, size: 64, seed: 6);
        string[] common = ["train", "--arch", "lare2", "--train", P("train"), "--val", P("val"), "--out", P("out")];
        var (exit, _, error) = Invoke(common);
        Assert.Equal(2, exit);
        Assert.Contains("--lare", error);
        (exit, _, error) = Invoke([.. common, "--lare", P("lare"), "--ablation", "half"]);
        Assert.Equal(2, exit);
        Assert.Contains("--ablation", error);
        (exit, _, error) = Invoke([.. common, "--lare", P("nowhere")]);
        Assert.Equal(2, exit);
        Assert.Contains("nowhere", error);
        (exit, _, error) = Invoke("train", "--arch", "vit", "--train", P("train"), "--val", P("val"), "--out", P("out"));
        Assert.Equal(2, exit);
        Assert.Contains("--arch", error);
    }
}
