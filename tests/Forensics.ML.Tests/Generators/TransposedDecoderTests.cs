using Forensics.ML.Models;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Generators;

public class TransposedDecoderTests
{
    public TransposedDecoderTests() => TorchRuntime.EnsureLoaded();

    static readonly AutoencoderKLConfig Transposed = AutoencoderKLConfig.SmallTest with { DecoderUpsample = AutoencoderKLConfig.UpsampleConvTranspose };

    [Fact]
    public void Transposed_upsampler_keeps_diffusers_names_with_conv_transpose_shapes()
    {
        using var nearest = new AutoencoderKL(AutoencoderKLConfig.SmallTest);
        using var transposed = new AutoencoderKL(Transposed);
        var a = nearest.state_dict();
        var b = transposed.state_dict();
        Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
        const string key = "decoder.up_blocks.0.upsamplers.0.conv.weight";
        // nn.Conv2d weights are [out, in, 3, 3]; nn.ConvTranspose2d weights are [in, out, 4, 4].
        Assert.Equal([64L, 64, 3, 3], a[key].shape);
        Assert.Equal([64L, 64, 4, 4], b[key].shape);
        Assert.Equal([64L], b["decoder.up_blocks.0.upsamplers.0.conv.bias"].shape);
        foreach (var name in a.Keys.Where(k => k != key))
            Assert.Equal(a[name].shape, b[name].shape);

        using var z = randn(1, 4, 8, 8);
        using var noGrad = no_grad();
        using var image = transposed.Decode(z);
        Assert.Equal([1L, 3, 16, 16], image.shape);
    }

    [Fact]
    public void Default_config_json_is_unchanged_and_the_option_round_trips()
    {
        Assert.Equal(AutoencoderKLConfig.UpsampleNearest, AutoencoderKLConfig.SmallTest.DecoderUpsample);
        Assert.DoesNotContain(AutoencoderKLConfig.DecoderUpsampleKey, AutoencoderKLConfig.SmallTest.ToJson());
        Assert.DoesNotContain(AutoencoderKLConfig.DecoderUpsampleKey, AutoencoderKLConfig.StableDiffusion.ToJson());
        var fixture = AutoencoderKLConfig.FromJsonFile(Path.Combine(AppContext.BaseDirectory, "fixtures", "reference-small", "vae", "config.json"));
        Assert.Equal(AutoencoderKLConfig.UpsampleNearest, fixture.DecoderUpsample);

        var json = Transposed.ToJson();
        Assert.Contains("\"decoder_upsample\": \"conv_transpose\"", json);
        var back = AutoencoderKLConfig.Parse(json);
        Assert.Equal(Transposed, back);
        Assert.NotEqual(AutoencoderKLConfig.SmallTest, back);

        var bad = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Parse(json.Replace("conv_transpose", "bilinear"), "x/config.json"));
        Assert.Contains("decoder_upsample", bad.Message);
        Assert.Contains("x/config.json", bad.Message);
    }

    [Fact]
    public void Analytic_macs_match_the_counted_macs_for_the_transposed_decoder()
    {
        using var vae = new AutoencoderKL(Transposed);
        using var x = randn(1, 3, 32, 32);
        Assert.Equal(MacCounter.PerSample(vae, x), vae.LayerMacsPerImage(32, 32));
    }
}
