using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics portal runs|show|queue|cancel`: a shared portal's runs through its HTTP API, authenticated with an API
/// token (made on the portal's /account/tokens page). The portal URL and token come from --url/--token or the
/// environment (FORENSICS_PORTAL_URL, FORENSICS_PORTAL_TOKEN). Answers are printed as the API's JSON; a refusal prints
/// the portal's message (status, title, detail and the fields it names) on stderr. Exit 0 on success, 1 when the portal
/// refuses or cannot be reached, 2 on bad arguments.
/// </summary>
public static class PortalCommand
{
    public const string UrlVariable = "FORENSICS_PORTAL_URL";
    public const string TokenVariable = "FORENSICS_PORTAL_TOKEN";

    public static Command Create()
    {
        var url = new Option<string>("--url")
        {
            Description = $"The portal's address (default: ${UrlVariable}, else http://127.0.0.1:5080)",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } u ? u : "http://127.0.0.1:5080",
        };
        var token = new Option<string?>("--token")
        {
            Description = $"An API token (default: ${TokenVariable})",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(TokenVariable),
        };

        var status = new Option<string?>("--status") { Description = "Only runs with this status (queued, running, succeeded, failed, canceled)" };
        var kind = new Option<string?>("--kind") { Description = "Only runs of this kind" };
        var take = new Option<int>("--take") { Description = "At most this many runs, newest first", DefaultValueFactory = _ => 50 };
        var runs = new Command("runs", "List runs, newest first") { status, kind, take };
        runs.SetAction((parse, ct) =>
        {
            var query = new List<string> { $"take={parse.GetValue(take)}" };
            if (parse.GetValue(status) is { } s) query.Add($"status={Uri.EscapeDataString(s)}");
            if (parse.GetValue(kind) is { } k) query.Add($"kind={Uri.EscapeDataString(k)}");
            return SendAsync(parse, url, token, HttpMethod.Get, "/api/runs?" + string.Join("&", query), null, ct);
        });

        var id = new Argument<long>("id") { Description = "The run's id" };
        var show = new Command("show", "One run, with its config, status, progress and worker") { id };
        show.SetAction((parse, ct) => SendAsync(parse, url, token, HttpMethod.Get, $"/api/runs/{parse.GetValue(id)}", null, ct));

        var cancelId = new Argument<long>("id") { Description = "The run's id" };
        var cancel = new Command("cancel", "Cancel a queued or running run (yours, or any as an admin)") { cancelId };
        cancel.SetAction((parse, ct) => SendAsync(parse, url, token, HttpMethod.Post, $"/api/runs/{parse.GetValue(cancelId)}/cancel", null, ct));

        var queueKind = new Option<string>("--kind") { Description = "The run kind: train, evaluate, crossgen, sweep, align, lare, ...", Required = true };
        var config = new Option<string?>("--config") { Description = "The run's config as a JSON object (the README's API section lists each kind's fields)" };
        var configFile = new Option<FileInfo?>("--config-file") { Description = "The run's config read from a JSON file (instead of --config)" };
        var seed = new Option<long?>("--seed") { Description = "The run's seed" };
        var tags = new Option<string[]>("--tag") { Description = "A tag for the run (repeatable)", AllowMultipleArgumentsPerToken = false };
        var queue = new Command("queue", "Queue a run; prints it (202) or the fields the portal refused (400)") { queueKind, config, configFile, seed, tags };
        queue.SetAction((parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var (inline, file) = (parse.GetValue(config), parse.GetValue(configFile));
            if ((inline is null) == (file is null))
            {
                error.WriteLine("--config: give the run's config as --config JSON or --config-file PATH (one of them)");
                return Task.FromResult(2);
            }
            var field = inline is null ? $"--config-file {file!.FullName}" : "--config";
            JsonNode? configNode;
            try { configNode = JsonNode.Parse(inline ?? File.ReadAllText(file!.FullName)); }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"{field}: {e.Message}");
                return Task.FromResult(2);
            }
            if (configNode is not JsonObject)
            {
                error.WriteLine($"{field}: must be a JSON object");
                return Task.FromResult(2);
            }
            var body = new JsonObject { ["kind"] = parse.GetValue(queueKind), ["config"] = configNode };
            if (parse.GetValue(seed) is { } s) body["seed"] = s;
            if (parse.GetValue(tags) is { Length: > 0 } t) body["tags"] = new JsonArray(t.Select(x => (JsonNode?)x).ToArray());
            return SendAsync(parse, url, token, HttpMethod.Post, "/api/runs", body.ToJsonString(), ct);
        });

        var submitDataset = new Option<long>("--dataset") { Description = "The registered dataset's id", Required = true };
        var submitSplit = new Option<string?>("--split") { Description = "The split scored (default every image of the dataset)" };
        var submitDetector = new Option<string>("--detector") { Description = "The detector's name on the leaderboard", Required = true };
        var submitScores = new Option<FileInfo>("--scores") { Description = "CSV with the columns path (relative to the dataset folder) and score = P(fake), optionally logit and label", Required = true };
        var submit = new Command("submit", "Submit scores computed elsewhere (POST /api/submissions); prints the run (202) or the rows the portal refused (400)")
            { submitDataset, submitSplit, submitDetector, submitScores };
        submit.SetAction((parse, ct) =>
        {
            var file = parse.GetRequiredValue(submitScores);
            string text;
            try { text = File.ReadAllText(file.FullName); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                parse.InvocationConfiguration.Error.WriteLine($"--scores {file.FullName}: {e.Message}");
                return Task.FromResult(2);
            }
            var body = new JsonObject
            {
                ["datasetId"] = parse.GetValue(submitDataset), ["split"] = parse.GetValue(submitSplit),
                ["detector"] = parse.GetValue(submitDetector), ["scores"] = text,
            };
            return SendAsync(parse, url, token, HttpMethod.Post, "/api/submissions", body.ToJsonString(), ct);
        });

        return new Command("portal", "A shared portal's runs through its HTTP API, with an API token") { url, token, runs, show, queue, cancel, submit };
    }

    /// <summary>One API call: the answer's JSON on stdout (0), or the portal's refusal on stderr (1).</summary>
    static async Task<int> SendAsync(ParseResult parse, Option<string> urlOption, Option<string?> tokenOption, HttpMethod method, string path,
        string? json, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        if (!Uri.TryCreate(parse.GetValue(urlOption), UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
        {
            error.WriteLine($"--url: not an http(s) address: {parse.GetValue(urlOption)}");
            return 2;
        }
        var token = parse.GetValue(tokenOption);
        if (string.IsNullOrWhiteSpace(token))
        {
            error.WriteLine($"--token: no API token (pass --token or set {TokenVariable}; make one on {new Uri(baseUri, "/account/tokens")})");
            return 2;
        }
        using var client = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Trim());
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try { response = await client.SendAsync(request, ct); }
        catch (HttpRequestException e)
        {
            error.WriteLine($"{method} {new Uri(baseUri, path)}: {e.Message}");
            return 1;
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                output.WriteLine(text);
                return 0;
            }
            error.WriteLine($"{method} {path}: {(int)response.StatusCode} {response.ReasonPhrase}{Describe(text)}");
            return 1;
        }
    }

    /// <summary>The problem details' title, detail and named fields, when the answer has them.</summary>
    static string Describe(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is not JsonObject problem) return "";
            var parts = new List<string>();
            foreach (var key in new[] { "title", "detail" })
                if (problem[key]?.GetValueKind() == JsonValueKind.String) parts.Add(problem[key]!.GetValue<string>());
            if (problem["errors"] is JsonObject errors)
                foreach (var (field, messages) in errors)
                    parts.Add($"{field}: {string.Join("; ", messages is JsonArray a ? a.Select(m => m?.ToString()) : [messages?.ToString()])}");
            return parts.Count == 0 ? "" : ": " + string.Join(" | ", parts.Distinct());
        }
        catch (JsonException) { return body.Length == 0 ? "" : ": " + body; }
    }
}
