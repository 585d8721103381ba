using Forensics.ML.Detectors;
using Forensics.ML.Inspection;
using Forensics.ML.Models;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Tests.Datasets;
using Forensics.ML.Tests.Evaluation;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Inspection;

/// <summary>Model inspection as the portal's zoo uses it: kind inference, key reports, MAC counts and input errors naming the field.</summary>
public class ModelInspectorTests
{
    public ModelInspectorTests() => EvalFixtures.EnsureTorch();

    [Fact]
    public void A_detector_checkpoint_is_inferred_loaded_cleanly_hashed_and_counted_at_224()
    {
        var inspection = ModelInspector.Inspect(EvalFixtures.Checkpoint);

        Assert.Equal(ModelKinds.Detector, inspection.Kind);
        Assert.Equal(DetectorArchitectures.Default.Name, inspection.Architecture);
        Assert.True(inspection.Keys.Clean, inspection.Keys.Describe());
        Assert.Equal(inspection.Keys.Keys, inspection.Keys.Loaded);
        Assert.Equal(new FileInfo(EvalFixtures.Checkpoint).Length, inspection.Bytes);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(EvalFixtures.Checkpoint))), inspection.Sha256);
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint, inspection.Architecture);
        using var input = zeros(1, 3, ModelMacs.DetectorImageSize, ModelMacs.DetectorImageSize);
        Assert.Equal(MacCounter.PerSample(detector.Model, input), inspection.Macs);
        Assert.Equal("224x224 image", inspection.MacsAt);
    }

    [Fact]
    public void Decode_macs_scaled_from_a_2x2_latent_equal_a_direct_count_at_full_size()
    {
        using var vae = new AutoencoderKL(AutoencoderKLConfig.SmallTest);
        const int side = 32;
        var (encode, decode) = ModelMacs.EncodeDecode(vae, side);

        var (h, w) = vae.LatentSize(side, side);
        using var latent = zeros(1, vae.Config.LatentChannels, h, w);
        using var decoder = new DecodeOnly(vae);
        Assert.Equal(MacCounter.PerSample(decoder, latent) + vae.AttentionMacsPerImage(side, side) / 2, decode);
        Assert.Equal(vae.MacsPerImage(side, side), encode + decode);
        Assert.True(encode > 0);
        // DecodeOnly borrows the autoencoder: disposing the wrapper leaves it usable.
        decoder.Dispose();
        using var image = vae.Decode(latent);
        Assert.Equal(new long[] { 1, 3, side, side }, image.shape);
    }

    [Fact]
    public void Bad_input_names_the_field_at_fault()
    {
        using var tmp = new TempDir();
        Assert.Equal("kind", Assert.Throws<ModelInspectionException>(() => ModelInspector.Inspect(EvalFixtures.Checkpoint, kind: "vocoder")).Field);
        Assert.Equal("architecture", Assert.Throws<ModelInspectionException>(() => ModelInspector.Inspect(EvalFixtures.Checkpoint, ModelKinds.Detector, "clip-rn")).Field);
        File.WriteAllText(tmp["notes.pth"], "not a checkpoint");
        var e = Assert.Throws<ModelInspectionException>(() => ModelInspector.Inspect(tmp["notes.pth"]));
        Assert.Equal("path", e.Field);
        Assert.Contains("notes.pth", e.Message);
        Directory.CreateDirectory(tmp["empty"]);
        Assert.Contains("no config.json", Assert.Throws<ModelInspectionException>(() => ModelInspector.Inspect(tmp["empty"])).Message);
    }
}
