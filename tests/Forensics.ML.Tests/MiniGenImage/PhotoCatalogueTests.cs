using System.Security.Cryptography;
using Forensics.Cli.Commands;
using Forensics.ML.MiniGenImage;
using Forensics.ML.Runtime;
using Forensics.ML.Tests.Datasets;

namespace Forensics.ML.Tests.MiniGenImage;

public sealed class PhotoCatalogueTests
{
    private const string Hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    public PhotoCatalogueTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    [Theory]
    [InlineData("sha256")]
    [InlineData("license")]
    [InlineData("split")]
    [InlineData("downscale")]
    public void A_missing_field_names_the_catalogue_the_photo_and_the_field(string field)
    {
        using var temp = new TempDir();
        var entry = MiniGenImageFixtures.Entry("dune.png", "train", "landscape", Hash);
        entry.Remove(field);
        var path = temp["photos.json"];
        MiniGenImageFixtures.WriteCatalogue(path, [MiniGenImageFixtures.Entry("ok.png", "val", "flower", Hash), entry]);

        var e = Assert.Throws<PhotoCatalogueException>(() => PhotoCatalogue.Load(path));
        Assert.Equal(field, e.Field);
        Assert.Equal("dune.png", e.Photo);
        Assert.Contains(path, e.Message);
        Assert.Contains("'dune.png'", e.Message);
        Assert.Contains($"'{field}'", e.Message);
    }

    [Theory]
    [InlineData("sha256", "not-a-hash")]
    [InlineData("split", "holdout")]
    [InlineData("file", "sub/dune.png")]
    public void A_malformed_field_is_named(string field, string value)
    {
        using var temp = new TempDir();
        var entry = MiniGenImageFixtures.Entry("dune.png", "train", "landscape", Hash);
        entry[field] = value;
        var path = temp["photos.json"];
        MiniGenImageFixtures.WriteCatalogue(path, [entry]);
        var e = Assert.Throws<PhotoCatalogueException>(() => PhotoCatalogue.Load(path));
        Assert.Equal(field, e.Field);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void The_committed_catalogue_is_valid_and_no_photo_is_in_two_splits()
    {
        var path = Path.Combine(RepoRoot(), "models", "demo", "photos", PhotoCatalogue.FileName);
        var catalogue = PhotoCatalogue.Load(path);
        Assert.InRange(catalogue.Photos.Count, 20, 40);
        Assert.Equal(catalogue.Photos.Count, catalogue.Photos.Select(p => p.Sha256).Distinct().Count());
        foreach (var split in new[] { "train", "val", "test" }) Assert.NotEmpty(catalogue.InSplit(split));
        foreach (var photo in catalogue.Photos)
        {
            var file = Path.Combine(Path.GetDirectoryName(path)!, photo.File);
            Assert.True(File.Exists(file), $"{photo.File} is catalogued but missing");
        }
    }

    [Fact]
    public void Reproduction_verifies_the_original_reduces_it_and_writes_the_readme()
    {
        using var temp = new TempDir();
        var original = MiniGenImageFixtures.Photo(90, 60, seed: 5).EncodeJpeg(95);
        var source = new FolderPackageSource(temp["pkg"], "/usr/share/photos/x.jpg", original);
        var catalogue = temp["photos.json"];
        MiniGenImageFixtures.WriteCatalogue(catalogue,
            [MiniGenImageFixtures.Entry("x.png", "test", "object", Convert.ToHexStringLower(SHA256.HashData(original)), downscale: 3, path: "/usr/share/photos/x.jpg")]);

        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, PhotosCommand.Run(catalogue, temp["out"], source, output, error));
        var reduced = RgbImage.Load(temp["out/x.png"]);
        Assert.Equal((30, 20), (reduced.Width, reduced.Height));
        Assert.Equal(RgbImage.Decode(original, "x").Downscale(3).Pixels, reduced.Pixels);
        var readme = File.ReadAllText(temp["out/README.md"]);
        Assert.Contains("| x.png | object | test | test-photos (1.0-1) | `/usr/share/photos/x.jpg` | CC0-1.0 | 2026, Test | 1/3 |", readme);
    }

    [Fact]
    public void A_changed_original_is_a_sha256_error_naming_the_photo()
    {
        using var temp = new TempDir();
        var original = MiniGenImageFixtures.Photo(30, 30, seed: 6).EncodePng();
        var source = new FolderPackageSource(temp["pkg"], "/usr/share/photos/x.png", original);
        var catalogue = temp["photos.json"];
        MiniGenImageFixtures.WriteCatalogue(catalogue, [MiniGenImageFixtures.Entry("x.png", "train", "object", Hash)]);

        var e = Assert.Throws<PhotoCatalogueException>(() =>
            PhotoReproduction.Reproduce(PhotoCatalogue.Load(catalogue), catalogue, temp["out"], source));
        Assert.Equal(("x.png", "sha256"), (e.Photo, e.Field));
        Assert.Contains(Hash, e.Message);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(original)), e.Message);

        var error = new StringWriter();
        Assert.Equal(PhotosCommand.CatalogueError, PhotosCommand.Run(catalogue, temp["out"], source, new StringWriter(), error));
        Assert.Contains("'sha256'", error.ToString());
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("Portal.sln not found above the test binaries");
    }

    // A package "extracted" by writing one file at its path in a folder: the apt-free stand-in for AptPackageSource.
    private sealed class FolderPackageSource(string root, string path, byte[] content) : IDebianPackageSource
    {
        public string Extract(string package, string version, string workDir)
        {
            var file = Path.Combine(root, path.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(file, content);
            return root;
        }
    }
}
