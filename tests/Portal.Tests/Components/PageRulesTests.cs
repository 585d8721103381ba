namespace Portal.Tests.Components;

/// <summary>The web app's layering rules, checked on its sources: pages ask query services; they do not query the store.</summary>
public class PageRulesTests
{
    static string PortalSources()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir.FullName, "src", "Portal");
    }

    [Fact]
    public void No_page_or_component_injects_the_store()
    {
        var razor = Directory.EnumerateFiles(PortalSources(), "*.razor", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")).ToList();
        Assert.NotEmpty(razor);
        var offenders = razor.Where(f => File.ReadAllText(f).Contains("IDbContextFactory", StringComparison.Ordinal)
                                         || File.ReadAllText(f).Contains("@inject PortalDb", StringComparison.Ordinal))
            .Select(Path.GetFileName).ToList();
        Assert.Empty(offenders);
    }
}
