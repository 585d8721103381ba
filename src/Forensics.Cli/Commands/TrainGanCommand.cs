using System.CommandLine;
using Forensics.ML.Generators;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics train-gan --data DIR --output DIR`: trains a DCGAN on a folder of images and writes its generator folder
/// (config.json, generator.safetensors, discriminator.safetensors, generator.json, card.md). Resumable. Exit 0 / 2 / 1.
/// </summary>
public static class TrainGanCommand
{
    /// <summary>Builds the `train-gan` verb.</summary>
    public static Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Training images (PNG/JPEG, searched recursively), each at least --resolution square" };
        var output = new Option<DirectoryInfo>("--output") { HelpName = "DIR", Required = true, Description = "Output generator folder" };
        var resolution = new Option<int>("--resolution") { HelpName = "PX", Description = "Image side, a power of two >= 16", DefaultValueFactory = _ => 64 };
        var latent = new Option<int>("--latent-dim") { HelpName = "N", DefaultValueFactory = _ => 64 };
        var ngf = new Option<int>("--ngf") { HelpName = "N", Description = "Generator width at full resolution", DefaultValueFactory = _ => 32 };
        var ndf = new Option<int>("--ndf") { HelpName = "N", Description = "Discriminator width at full resolution", DefaultValueFactory = _ => 32 };
        var steps = new Option<int>("--steps") { HelpName = "N", DefaultValueFactory = _ => 2000 };
        var batch = new Option<int>("--batch") { HelpName = "N", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { HelpName = "X", DefaultValueFactory = _ => 2e-4 };
        var name = new Option<string>("--name") { HelpName = "NAME", DefaultValueFactory = _ => "dcgan" };
        var common = new CommonTrainingOptions();

        var cmd = new Command("train-gan", "Train a DCGAN generator on a folder of images") { data, output, resolution, latent, ngf, ndf, steps, batch, lr, name };
        common.AddTo(cmd);
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            return Task.FromResult(CommonTrainingOptions.Guard("train-gan", config.Error, () =>
            {
                var options = new GanTrainOptions(parse.GetRequiredValue(data).FullName, parse.GetRequiredValue(output).FullName)
                {
                    Name = parse.GetValue(name)!,
                    Model = new DcganConfig
                    {
                        Resolution = parse.GetValue(resolution), LatentDim = parse.GetValue(latent),
                        GeneratorWidth = parse.GetValue(ngf), DiscriminatorWidth = parse.GetValue(ndf),
                    },
                    Steps = parse.GetValue(steps),
                    BatchSize = parse.GetValue(batch),
                    LearningRate = parse.GetValue(lr),
                    Seed = parse.GetValue(common.Seed),
                    CheckpointEvery = parse.GetValue(common.CheckpointEvery),
                    StopAfter = parse.GetValue(common.StopAfter),
                    Source = CommonTrainingOptions.SourceLine(),
                };
                common.LoadTorch(parse);
                var result = GanTrainer.Run(options, config.Output, ct);
                config.Output.WriteLine(CommonTrainingOptions.Summary("train-gan", result));
            }));
        });
        return cmd;
    }
}
