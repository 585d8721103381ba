using System.Text;
using System.Text.Json.Nodes;
using Portal.Experiments;

namespace Portal.Tests.Demo;

public sealed class DemoManifestTests
{
    static DemoManifest Parse(JsonNode json) => DemoManifest.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()), "/models/demo/demo.json");

    [Fact]
    public void The_detail_floor_of_the_real_patches_is_read_into_the_cutting_options()
    {
        var json = DemoModels.DemoManifestJson();
        Assert.Equal(0, Parse(json).PatchOptions().MinLaplacianEnergy);
        json["dataset"]!["minLaplacianEnergy"] = 100;
        var options = Parse(json).PatchOptions();
        Assert.Equal(100, options.MinLaplacianEnergy);
        Assert.Equal(64, options.Size);
    }

    [Theory]
    [InlineData("-1", "must be 0..1000000, not -1")]
    [InlineData("\"lots\"", "must be a number")]
    public void A_bad_detail_floor_names_the_file_and_the_field(string value, string message)
    {
        var json = DemoModels.DemoManifestJson();
        json["dataset"]!["minLaplacianEnergy"] = JsonNode.Parse(value);
        var e = Assert.Throws<DemoManifestException>(() => Parse(json));
        Assert.Equal("dataset.minLaplacianEnergy", e.Field);
        Assert.Contains("/models/demo/demo.json", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void The_shipped_demo_keeps_only_real_patches_with_fine_detail()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        var shipped = Path.Combine(dir!.FullName, "models", "demo", "demo.json");
        Assert.Equal(100, DemoManifest.Load(shipped).MinLaplacianEnergy);
    }
}
