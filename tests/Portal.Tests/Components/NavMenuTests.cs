using Bunit;
using Portal.Components.Layout;

namespace Portal.Tests.Components;

/// <summary>The side menu: Home, then the Data, Jobs, Results and Admin groups; no two entries share an icon; admin entries for admins only.</summary>
public class NavMenuTests : PortalComponentTest
{
    [Fact]
    public void Groups_the_pages_under_Data_Jobs_Results_and_Admin()
    {
        var menu = Render<NavMenu>();

        foreach (var group in new[] { "Data", "Jobs", "Results", "Admin" })
            Assert.Single(menu.FindAll($"[data-testid=nav-group-{group.ToLowerInvariant()}]"));
        Assert.Equal(["Data", "Jobs", "Results", "Admin"], NavMenu.Groups.Select(g => g.Title));
        Assert.Contains("Leaderboard", menu.Find("[data-testid=nav-group-results]").TextContent);
        Assert.Contains("Datasets", menu.Find("[data-testid=nav-group-data]").TextContent);
        Assert.Contains("Runs", menu.Find("[data-testid=nav-group-jobs]").TextContent);
        Assert.Contains("Audit log", menu.Find("[data-testid=nav-group-admin]").TextContent);
        // Every page of the old flat menu is still reachable.
        var hrefs = menu.FindAll("a.mud-nav-link").Select(a => a.GetAttribute("href")).ToList();
        foreach (var page in new[] { "datasets", "train", "align", "models", "evaluate", "crossgen", "sweep", "leaderboard", "compare",
                     "experiments", "matrix", "demo", "runs", "system", "admin/users", "admin/audit", "hangfire" })
            Assert.Contains(page, hrefs);
    }

    [Fact]
    public void No_two_entries_or_groups_share_an_icon()
    {
        var menu = Render<NavMenu>();

        // As drawn: each icon's SVG markup, over the links and the group headers.
        var drawn = menu.FindAll("svg.mud-nav-link-icon, .mud-nav-group svg.mud-icon-root:not(.mud-nav-link-expand-icon)")
            .Select(svg => svg.InnerHtml).ToList();
        Assert.True(drawn.Count >= 21, $"only {drawn.Count} icons drawn");
        var duplicates = drawn.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(duplicates);
        var declared = NavMenu.Groups.Select(g => g.Icon).Concat(NavMenu.Groups.SelectMany(g => g.Items).Select(i => i.Icon)).ToList();
        Assert.Equal(declared.Count, declared.Distinct().Count());
    }

    [Fact]
    public void A_researcher_sees_no_admin_entries()
    {
        SignInAs("res", Portal.Auth.Roles.Researcher);
        var menu = Render<NavMenu>();

        var text = menu.Markup;
        Assert.DoesNotContain("Audit log", text);
        Assert.DoesNotContain("admin/users", text);
        Assert.Contains("System", menu.Find("[data-testid=nav-group-admin]").TextContent);
    }
}
