using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Leaderboard;

/// <summary>GET /api/leaderboard and its CSV/LaTeX exports over the real app: the same rows, and 400s naming the parameter.</summary>
public class LeaderboardApiTests
{
    [Fact]
    public async Task Json_csv_and_latex_answer_the_same_rows_and_bad_parameters_are_named()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        await client.GetJsonAsync("/api/health");   // the host is up and the store migrated
        await LeaderboardQueryTests.SeedAsync(app.Services.GetRequiredService<IDbContextFactory<PortalDb>>());

        const string filters = "perturbation=none&sort=acc:imagenet_glide&desc=true";
        var json = await client.GetJsonAsync($"/api/leaderboard?{filters}&skip=6&take=2");
        Assert.Equal(9, json.GetProperty("total").GetInt32());   // 7 paper rows + 2 clean detectors
        var rows = json.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["CNNSpot", "det-a"], rows.Select(r => r.GetProperty("detector").GetString()));
        Assert.Equal(0.72, rows[1].GetProperty("acc").GetProperty(LeaderboardQueryTests.Glide).GetProperty("mean").GetDouble(), 9);
        Assert.Equal(8, json.GetProperty("generators").GetArrayLength());

        // The export of every page: the paper rows, then det-a (GLIDE 0.72) and b (0.52).
        var csv = (await client.GetStringAsync($"/api/leaderboard.csv?{filters}")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10, csv.Length);
        Assert.StartsWith("GenImage paper,Swin-T,", csv[1]);
        Assert.StartsWith("measured,det-a,", csv[8]);
        Assert.StartsWith("measured,/models/b_v2.pth,", csv[9]);
        // One page of the export: the same two rows as the JSON page.
        var csvPage = (await client.GetStringAsync($"/api/leaderboard.csv?{filters}&skip=6&take=2")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["GenImage paper,CNNSpot", "measured,det-a"], csvPage.Skip(1).Select(l => string.Join(",", l.Split(',').Take(2))));
        var tex = await client.GetStringAsync($"/api/leaderboard.tex?{filters}&q=b_v2");
        Assert.Contains("/models/b\\_v2.pth & measured & genimage-val & none & 0.5 & 56.0 $\\pm$ 1.4 & 99.0 $\\pm$ 0.0 & 52.0 $\\pm$ 2.8 & 69.0 $\\pm$ 1.4 \\\\\n", tex);
        Assert.Contains("\\bottomrule", tex);

        foreach (var (query, field) in new[] { ("sort=bogus", "sort"), ("skip=-1", "skip"), ("take=abc", "take"), ("take=5000", "take"), ("desc=maybe", "desc"), ("published=Nope", "published") })
            foreach (var path in new[] { "/api/leaderboard", "/api/leaderboard.csv", "/api/leaderboard.tex" })
            {
                if (path != "/api/leaderboard" && query == "take=5000") continue;   // exports have no page limit
                var response = await client.GetAsync($"{path}?{query}");
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{path}?{query} names {field}");
            }
    }
}
