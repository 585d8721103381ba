using System.Globalization;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Leaderboard;

namespace Portal.Api;

/// <summary>
/// The leaderboard's API. GET /api/leaderboard?dataset=&amp;perturbation=&amp;threshold=&amp;tag=&amp;arch=&amp;q=&amp;sort=&amp;desc=&amp;skip=&amp;take=&amp;ap=&amp;published=&amp;baselines=
/// answers {total, rows, generators} (take defaults to 50, at most 1000). /api/leaderboard.csv and .tex take the same
/// parameters and write exactly those rows: every page when skip/take are left out, one page when they are given.
/// </summary>
public static class LeaderboardEndpoints
{
    /// <summary>The JSON page size when take is not given.</summary>
    public const int DefaultTake = 50;

    public static IEndpointRouteBuilder MapLeaderboardApi(this IEndpointRouteBuilder app)
    {
        // Public to anonymous readers when Portal:Auth:PublicLeaderboard is set.
        var api = app.MapGroup("/api").WithTags("leaderboard").RequireAuthorization(Auth.Policies.Leaderboard);
        api.MapGet("/leaderboard", (HttpRequest request, LeaderboardQuery query, CancellationToken ct) =>
                Answer(request, DefaultTake, async r => TypedResults.Ok(await query.RunAsync(r, ct))))
            .WithSummary("Detectors x generators pivot of evaluation and cross-generator runs (ACC/AP per generator with bootstrap intervals, mean, mean ± sd over seeds) per threshold mode, with the GenImage paper's rows; 400 naming a bad parameter");
        api.MapGet("/leaderboard.csv", (HttpRequest request, LeaderboardQuery query, CancellationToken ct) =>
                Answer(request, null, async r => TypedResults.Text(
                    LeaderboardExport.Csv(await query.RunAsync(r, ct), Flag(request, "ap", false)),
                    "text/csv; charset=utf-8")))
            .WithSummary("The leaderboard as CSV: same parameters, all rows unless skip/take are given");
        api.MapGet("/leaderboard.tex", (HttpRequest request, LeaderboardQuery query, CancellationToken ct) =>
                Answer(request, null, async r => TypedResults.Text(
                    LeaderboardExport.Latex(await query.RunAsync(r, ct), Flag(request, "ap", false)),
                    "application/x-tex; charset=utf-8")))
            .WithSummary("The leaderboard as a LaTeX booktabs tabular: same parameters, all rows unless skip/take are given");
        return app;
    }

    static async Task<IResult> Answer(HttpRequest request, int? defaultTake, Func<LeaderboardRequest, Task<IResult>> answer)
    {
        try
        {
            var r = Parse(request, defaultTake);
            return await answer(r);
        }
        catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
    }

    /// <summary>The query string as a request; a value that does not parse throws naming its parameter.</summary>
    public static LeaderboardRequest Parse(HttpRequest request, int? defaultTake)
    {
        string? Text(string name) => request.Query.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v.ToString()) ? v.ToString() : null;
        int? Int(string name, int? fallback)
        {
            if (Text(name) is not { } text) return fallback;
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
                ? value : throw new FieldException(name, $"{name} must be an integer, not '{text}'");
        }
        var take = Int("take", defaultTake);
        if (take > LeaderboardQuery.MaxTake && defaultTake is not null)
            throw new FieldException("take", $"take must be at most {LeaderboardQuery.MaxTake}, not {take}");
        return new LeaderboardRequest(Text("dataset"), Text("perturbation"), Text("arch"), Text("q"), Text("sort"),
            Text("desc") is null ? null : Flag(request, "desc", false), Int("skip", 0)!.Value, take, Text("published"), Flag(request, "baselines", true),
            Text("threshold"), Text("tag"));
    }

    static bool Flag(HttpRequest request, string name, bool fallback)
    {
        if (!request.Query.TryGetValue(name, out var v) || string.IsNullOrWhiteSpace(v.ToString())) return fallback;
        return v.ToString().ToLowerInvariant() switch
        {
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            var other => throw new FieldException(name, $"{name} must be true or false, not '{other}'"),
        };
    }
}
