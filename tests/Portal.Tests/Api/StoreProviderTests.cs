using Portal.Tests.Support;

namespace Portal.Tests.Api;

/// <summary>Portal:Store:Provider and ConnectionStrings:Portal: bad settings stop the start with an error naming the key.</summary>
public class StoreProviderTests
{
    static string Messages(Exception e)
    {
        var all = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException) all.Add(x.Message);
        if (e is AggregateException a) all.AddRange(a.InnerExceptions.Select(Messages));
        return string.Join(" | ", all);
    }

    [Fact]
    public void Postgres_without_a_connection_string_names_ConnectionStrings_Portal()
    {
        using var tmp = new TempDir();
        using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string>
        {
            ["Portal:Store:Provider"] = "postgres", ["ConnectionStrings:Portal"] = "",
        });
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("ConnectionStrings:Portal", Messages(e));
        Assert.Contains("missing", Messages(e));
    }

    [Fact]
    public void Postgres_with_the_sqlite_connection_string_names_ConnectionStrings_Portal()
    {
        using var tmp = new TempDir();
        using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string>
        {
            ["Portal:Store:Provider"] = "postgres", ["ConnectionStrings:Portal"] = "Data Source=portal.db",
        });
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("ConnectionStrings:Portal", Messages(e));
    }

    [Fact]
    public void An_unknown_provider_names_Portal_Store_Provider()
    {
        using var tmp = new TempDir();
        using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Store:Provider"] = "mysql" });
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("Portal:Store:Provider is 'mysql'", Messages(e));
    }
}
