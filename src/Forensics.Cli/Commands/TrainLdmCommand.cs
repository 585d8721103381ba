using System.CommandLine;
using Forensics.ML.Generators;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics train-ldm --data DIR --vae DIR --text DIR --output DIR`: trains a small text-conditioned UNet on the
/// latents of a train-vae VAE and writes a diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/,
/// scheduler/, model_index.json) with generator.json and card.md. Resumable. Exit 0 / 2 (bad input) / 1.
/// </summary>
public static class TrainLdmCommand
{
    /// <summary>Builds the `train-ldm` verb.</summary>
    public static Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Training images (PNG/JPEG, recursive), centre-cropped to the VAE's sample_size" };
        var vae = new Option<DirectoryInfo>("--vae") { HelpName = "DIR", Required = true, Description = "VAE folder written by train-vae" };
        var text = new Option<DirectoryInfo>("--text") { HelpName = "DIR", Required = true, Description = "Folder with text_encoder/ and tokenizer/ (CLIP text model, transformers layout)" };
        var output = new Option<DirectoryInfo>("--output") { HelpName = "DIR", Required = true, Description = "Output Stable Diffusion folder" };
        var channels = new Option<string>("--unet-channels") { HelpName = "C1,C2,..", Description = "UNet block_out_channels", DefaultValueFactory = _ => "64,128" };
        var layers = new Option<int>("--layers-per-block") { HelpName = "N", DefaultValueFactory = _ => 1 };
        var heads = new Option<int>("--heads") { HelpName = "N", Description = "Attention heads per level", DefaultValueFactory = _ => 4 };
        var groups = new Option<int>("--norm-groups") { HelpName = "N", DefaultValueFactory = _ => 32 };
        var prompt = new Option<string>("--prompt") { HelpName = "TEXT", DefaultValueFactory = _ => "a photo" };
        var uncond = new Option<double>("--uncond-prob") { HelpName = "P", Description = "Probability of the empty prompt in training (for guidance)", DefaultValueFactory = _ => 0.1 };
        var steps = new Option<int>("--steps") { HelpName = "N", DefaultValueFactory = _ => 2000 };
        var batch = new Option<int>("--batch") { HelpName = "N", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { HelpName = "X", DefaultValueFactory = _ => 3e-4 };
        var sampleSteps = new Option<int>("--sample-steps") { HelpName = "N", Description = "DDIM steps recorded for sampling", DefaultValueFactory = _ => 25 };
        var guidance = new Option<double>("--guidance") { HelpName = "X", Description = "Classifier-free guidance scale recorded for sampling (1: off)", DefaultValueFactory = _ => 1.0 };
        var name = new Option<string>("--name") { HelpName = "NAME", DefaultValueFactory = _ => "ldm" };
        var common = new CommonTrainingOptions();

        var cmd = new Command("train-ldm", "Train a miniature latent diffusion model (diffusers Stable Diffusion folder) on a trained VAE's latents")
        {
            data, vae, text, output, channels, layers, heads, groups, prompt, uncond, steps, batch, lr, sampleSteps, guidance, name,
        };
        common.AddTo(cmd);
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            return Task.FromResult(CommonTrainingOptions.Guard("train-ldm", config.Error, () =>
            {
                var options = new LdmTrainOptions(parse.GetRequiredValue(data).FullName, parse.GetRequiredValue(vae).FullName,
                    parse.GetRequiredValue(text).FullName, parse.GetRequiredValue(output).FullName)
                {
                    Name = parse.GetValue(name)!,
                    BlockOutChannels = CommonTrainingOptions.IntList(parse.GetValue(channels)!, "--unet-channels"),
                    LayersPerBlock = parse.GetValue(layers),
                    AttentionHeads = parse.GetValue(heads),
                    NormNumGroups = parse.GetValue(groups),
                    Prompt = parse.GetValue(prompt)!,
                    UnconditionalProbability = parse.GetValue(uncond),
                    Steps = parse.GetValue(steps),
                    BatchSize = parse.GetValue(batch),
                    LearningRate = parse.GetValue(lr),
                    InferenceSteps = parse.GetValue(sampleSteps),
                    GuidanceScale = parse.GetValue(guidance),
                    Seed = parse.GetValue(common.Seed),
                    CheckpointEvery = parse.GetValue(common.CheckpointEvery),
                    StopAfter = parse.GetValue(common.StopAfter),
                    Source = CommonTrainingOptions.SourceLine(),
                };
                common.LoadTorch(parse);
                var result = LdmTrainer.Run(options, config.Output, ct);
                config.Output.WriteLine(CommonTrainingOptions.Summary("train-ldm", result));
            }));
        });
        return cmd;
    }
}
