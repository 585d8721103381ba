using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>
/// The shape of a DCGAN (Radford et al. 2016, as in PyTorch's DCGAN example): a latent of <see cref="LatentDim"/>
/// channels at 1x1, projected to 4x4 and doubled by 4x4 stride-2 transposed convolutions up to
/// <see cref="Resolution"/>; the discriminator mirrors it with strided convolutions.
/// </summary>
public sealed record DcganConfig
{
    /// <summary>Latent channels (PyTorch's example: nz = 100).</summary>
    public int LatentDim { get; init; } = 64;

    /// <summary>Generator width at full resolution (ngf); doubled at every lower level.</summary>
    public int GeneratorWidth { get; init; } = 32;

    /// <summary>Discriminator width at full resolution (ndf); doubled at every lower level.</summary>
    public int DiscriminatorWidth { get; init; } = 32;

    /// <summary>Side of the square images: a power of two, at least 16.</summary>
    public int Resolution { get; init; } = 64;

    /// <summary>Stride-2 stages between 4x4 and <see cref="Resolution"/>.</summary>
    public int Stages => (int)Math.Log2(Resolution / 4);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate(string source = "DCGAN config")
    {
        if (Resolution < 16 || (Resolution & (Resolution - 1)) != 0)
            throw new ArgumentException($"{source}: resolution must be a power of two of at least 16, not {Resolution}");
        if (LatentDim < 1) throw new ArgumentException($"{source}: latent_dim must be positive, not {LatentDim}");
        if (GeneratorWidth < 1) throw new ArgumentException($"{source}: ngf must be positive, not {GeneratorWidth}");
        if (DiscriminatorWidth < 1) throw new ArgumentException($"{source}: ndf must be positive, not {DiscriminatorWidth}");
    }

    /// <summary>config.json text.</summary>
    public string ToJson() => new JsonObject
    {
        ["_class_name"] = "DCGAN",
        ["latent_dim"] = LatentDim,
        ["ngf"] = GeneratorWidth,
        ["ndf"] = DiscriminatorWidth,
        ["resolution"] = Resolution,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>Reads config.json; errors name the file and the key.</summary>
    public static DcganConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No DCGAN config at {path}", path);
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: the JSON is not an object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        int Int(string key) => o[key] is JsonValue v && v.TryGetValue<int>(out var i)
            ? i : throw new InvalidDataException($"{path}: '{key}' must be an integer");
        var config = new DcganConfig { LatentDim = Int("latent_dim"), GeneratorWidth = Int("ngf"), DiscriminatorWidth = Int("ndf"), Resolution = Int("resolution") };
        try { config.Validate(path); }
        catch (ArgumentException e) { throw new InvalidDataException(e.Message, e); }
        return config;
    }
}

/// <summary>
/// DCGAN generator: main = ConvTranspose2d(latent, w*2^(S-1), 4, 1, 0) -> BN -> ReLU, then per stage
/// ConvTranspose2d(4, 2, 1) halving the width -> BN -> ReLU, and a last ConvTranspose2d to 3 channels -> tanh.
/// Keys are PyTorch's example's (main.0.weight, main.1.running_mean, ...). Maps [B, latent, 1, 1] to [B, 3, R, R] in [-1, 1].
/// </summary>
public sealed class DcganGenerator : nn.Module<Tensor, Tensor>
{
    private readonly Sequential main;

    /// <summary>A generator of <paramref name="config"/> with DCGAN's initialisation (conv N(0, 0.02), BN weight N(1, 0.02)).</summary>
    public DcganGenerator(DcganConfig config) : base(nameof(DcganGenerator))
    {
        config.Validate();
        Config = config;
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        void Add(nn.Module<Tensor, Tensor> m) => layers.Add((layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m));
        long width = (long)config.GeneratorWidth << (config.Stages - 1);
        Add(nn.ConvTranspose2d(config.LatentDim, width, 4, stride: 1, padding: 0, bias: false));
        Add(new KeptAliveBatchNorm2d(width));
        Add(nn.ReLU(inplace: true));
        for (var s = 1; s < config.Stages; s++)
        {
            Add(nn.ConvTranspose2d(width, width / 2, 4, stride: 2, padding: 1, bias: false));
            width /= 2;
            Add(new KeptAliveBatchNorm2d(width));
            Add(nn.ReLU(inplace: true));
        }
        Add(nn.ConvTranspose2d(width, 3, 4, stride: 2, padding: 1, bias: false));
        Add(nn.Tanh());
        main = nn.Sequential(layers);
        RegisterComponents();
        Dcgan.Initialise(this);
    }

    /// <summary>The configuration.</summary>
    public DcganConfig Config { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor z) => main.call(z);
}

/// <summary>
/// DCGAN discriminator: main = Conv2d(3, w, 4, 2, 1) -> LeakyReLU(0.2), per further stage Conv2d(4, 2, 1) doubling
/// the width -> BN -> LeakyReLU(0.2), then Conv2d(4, 1, 0) to one logit per image ([B]).
/// </summary>
public sealed class DcganDiscriminator : nn.Module<Tensor, Tensor>
{
    private readonly Sequential main;

    /// <summary>A discriminator of <paramref name="config"/> with DCGAN's initialisation.</summary>
    public DcganDiscriminator(DcganConfig config) : base(nameof(DcganDiscriminator))
    {
        config.Validate();
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        void Add(nn.Module<Tensor, Tensor> m) => layers.Add((layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m));
        long width = config.DiscriminatorWidth;
        Add(nn.Conv2d(3, width, 4, stride: 2, padding: 1, bias: false));
        Add(nn.LeakyReLU(0.2, inplace: true));
        for (var s = 1; s < config.Stages; s++)
        {
            Add(nn.Conv2d(width, width * 2, 4, stride: 2, padding: 1, bias: false));
            width *= 2;
            Add(new KeptAliveBatchNorm2d(width));
            Add(nn.LeakyReLU(0.2, inplace: true));
        }
        Add(nn.Conv2d(width, 1, kernel_size: 4, stride: 1, padding: 0L, bias: false));
        main = nn.Sequential(layers);
        RegisterComponents();
        Dcgan.Initialise(this);
    }

    /// <summary>Logits [B] for images [B, 3, R, R] in [-1, 1].</summary>
    public override Tensor forward(Tensor x) => main.call(x).flatten();
}

internal static class Dcgan
{
    // DCGAN's weights_init: conv weights N(0, 0.02); BatchNorm weights N(1, 0.02), biases 0.
    public static void Initialise(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in module.named_modules())
            switch (m)
            {
                case Conv2d c: nn.init.normal_(c.weight, 0, 0.02); break;
                case ConvTranspose2d c: nn.init.normal_(c.weight, 0, 0.02); break;
                case KeptAliveBatchNorm2d b:
                    nn.init.normal_(b.weight, 1, 0.02);
                    nn.init.zeros_(b.bias);
                    break;
            }
    }
}
