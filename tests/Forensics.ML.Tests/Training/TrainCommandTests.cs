using System.CommandLine;
using Forensics.Cli.Commands;
using Forensics.ML.Models;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using static Forensics.ML.Tests.Training.TrainingFixtures;

namespace Forensics.ML.Tests.Training;

public class TrainCommandTests
{
    public TrainCommandTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand("test") { TrainCommand.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static string[] Args(TempFolder dir, int epochs, params string[] extra) =>
    [
        "train", "--train", dir["train"], "--val", dir["val"], "--out", dir["out"], "--epochs", epochs.ToString(),
        "--batch", "4", "--width", "4", "--layers", "1,1,1,1", "--crop", "16", "--augment", "none", "--workers", "1",
        "--threads", "1", .. extra,
    ];

    [Fact]
    public void Trains_synced_pairs_prints_epoch_lines_writes_best_weights_and_resumes()
    {
        using var dir = new TempFolder();
        WriteAligned(dir["train"], 8, 24, seed: 11);
        WriteUnpaired(dir["val"], 4, 24, seed: 12);

        var (exit, output, error) = Invoke(Args(dir, 2, "--mode", "synced"));

        Assert.True(exit == 0, error + output);
        Assert.Contains("Training pairs in", output);
        Assert.Contains("8 pair(s); 0 unmatched real(s); 0 unmatched fake(s).", output);
        Assert.Contains("Validation: 4 real, 4 fake image(s)", output);
        Assert.Matches(@"epoch 1: train loss \d\.\d{4}, val balanced acc \d\.\d{4} \(real \d\.\d{4}, fake \d\.\d{4}\), acc \d\.\d{4}, AP \d\.\d{4}, next lr 0\.0001, best", output);
        Assert.Contains("epoch 2: train loss", output);
        Assert.Contains("Done after 2 epoch(s) (MaxEpochs)", output);
        var best = Path.Combine(dir["out"], TrainingCheckpoint.BestFileName);
        using (var model = new ResNet(ResNetOptions.Res50NoDown().Small(4, [1, 1, 1, 1])))
        using (var weights = SafeTensors.Load(best))
            Assert.True(StateDictLoader.Load(model, weights, strict: true).IsClean);

        (exit, output, error) = Invoke(Args(dir, 3, "--mode", "synced"));

        Assert.True(exit == 0, error + output);
        Assert.Contains($"Found {Path.Combine(dir["out"], TrainingCheckpoint.FileName)}: resuming.", output);
        Assert.Contains("2 epoch(s) done", output);
        Assert.DoesNotContain("epoch 1:", output);
        Assert.Contains("epoch 3: train loss", output);
    }

    [Fact]
    public void Arch_torchscript_fine_tunes_a_torchscript_detector_in_synced_mode_and_writes_it_back_as_torchscript()
    {
        using var dir = new TempFolder();
        WriteAligned(dir["train"], 8, 24, seed: 11);
        WriteUnpaired(dir["val"], 4, 24, seed: 12);
        var model = Path.Combine(AppContext.BaseDirectory, "fixtures", "detectors", "trainable_scripted.pt");
        string[] Ts(int epochs, params string[] extra) =>
        [
            "train", "--arch", "torchscript", "--checkpoint", model, "--train", dir["train"], "--val", dir["val"], "--out", dir["out"],
            "--epochs", epochs.ToString(), "--batch", "4", "--crop", "16", "--augment", "none", "--workers", "1", "--threads", "1", .. extra,
        ];

        var (exit, output, error) = Invoke(Ts(2));

        Assert.True(exit == 0, error + output);
        Assert.Contains($"Training TorchScript detector {model}, Synced, 4 pairs per batch", output);
        Assert.Contains("trainable tensor(s)", output);
        Assert.Contains("epoch 2: train loss", output);
        Assert.Contains($"Best weights: {Path.Combine(dir["out"], "best.pt")}", output);
        using (var best = Forensics.ML.Detectors.DetectorCheckpoint.Load(Path.Combine(dir["out"], "best.pt"), "torchscript"))
            Assert.Equal(Path.Combine(dir["out"], "best.card.json"), best.CardPath);

        (exit, output, error) = Invoke(Ts(3));
        Assert.True(exit == 0, error + output);
        Assert.Contains("2 epoch(s) done", output);
        Assert.Contains("epoch 3: train loss", output);

        (exit, _, error) = Invoke(Ts(1, "--card", Path.Combine(AppContext.BaseDirectory, "fixtures", "detectors", "cards", "none.prob.card.json")).Select(a => a == dir["out"] ? dir["prob"] : a).ToArray());
        Assert.Equal(TrainCommand.InputError, exit);
        Assert.Contains("training needs logits", error);
        (exit, _, error) = Invoke("train", "--arch", "torchscript", "--train", dir["train"], "--val", dir["val"], "--out", dir["x"]);
        Assert.Equal(TrainCommand.InputError, exit);
        Assert.Contains("--arch torchscript needs --checkpoint FILE", error);
        (exit, _, error) = Invoke("train", "--checkpoint", model, "--train", dir["train"], "--val", dir["val"], "--out", dir["x"]);
        Assert.Equal(TrainCommand.InputError, exit);
        Assert.Contains("only used with --arch torchscript", error);
    }

    [Fact]
    public void Independent_mode_trains_on_an_unpaired_set()
    {
        using var dir = new TempFolder();
        WriteUnpaired(dir["train"], 6, 24, seed: 13);
        WriteUnpaired(dir["val"], 3, 24, seed: 14);

        var (exit, output, error) = Invoke(Args(dir, 1, "--mode", "independent"));

        Assert.True(exit == 0, error + output);
        Assert.Contains("Training: 6 real, 6 fake image(s)", output);
        Assert.Contains("epoch 1: train loss", output);
        Assert.True(File.Exists(Path.Combine(dir["out"], TrainingCheckpoint.BestFileName)));
    }

    [Fact]
    public void Bad_input_exits_2_with_a_message_naming_the_problem()
    {
        using var dir = new TempFolder();
        WriteUnpaired(dir["train"], 2, 24, seed: 15);
        WriteUnpaired(dir["val"], 2, 24, seed: 16);

        var (exit, _, error) = Invoke(Args(dir, 1, "--mode", "sideways"));
        Assert.Equal(2, exit);
        Assert.Contains("--mode must be synced, unsynced or independent, not 'sideways'", error);

        (exit, _, error) = Invoke("train", "--train", dir["train"], "--out", dir["out"]);
        Assert.True(exit == 2, error);
        Assert.Contains("--val DIR is required", error);

        (exit, _, error) = Invoke("train", "--train", dir["train"], "--val", dir["val"], "--out", dir["out"], "--layers", "1,2");
        Assert.Equal(2, exit);
        Assert.Contains("--layers must list four stages", error);

        (exit, _, error) = Invoke(["train", "--train", dir["missing"], "--val", dir["val"], "--out", dir["out"]]);
        Assert.Equal(2, exit);
        Assert.Contains(dir["missing"], error);

        // Unpaired files (different stems) cannot be trained in synced mode.
        (exit, _, error) = Invoke(Args(dir, 1, "--mode", "synced"));
        Assert.Equal(2, exit);
        Assert.Contains("No real image pairs with a fake", error);
        Assert.False(Directory.Exists(dir["out"]));
    }
}
