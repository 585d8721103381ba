using System.Text.Json;
using Forensics.ML.Metrics;
using Microsoft.EntityFrameworkCore;
using Portal.Experiments;
using Portal.Infrastructure;
using Portal.Store;
using SkiaSharp;

namespace Portal.Api;

/// <summary>Files of runs served to the pages: thumbnails of the images an evaluation scored.</summary>
public static class ArtifactEndpoints
{
    /// <summary>The smallest and largest thumbnail edge accepted by ?size=.</summary>
    public const int MinSize = 16, MaxSize = 1024;

    public static IEndpointRouteBuilder MapArtifactApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/runs/{id:long}/images/{**path}", ThumbnailAsync).WithTags("runs")
            .WithSummary("A JPEG thumbnail (longest edge = ?size, default 128) of an image the run scored: the path must be listed in the run's scores.csv; 404 otherwise");
        app.MapGet("/api/runs/{id:long}/aligned/{side}/{**path}", AlignedThumbnailAsync).WithTags("runs")
            .WithSummary("A JPEG thumbnail of an alignment run's real image (side 'real', path as its alignment.json input) or its reconstruction (side 'reconstruction', path as its output); 404 for any other path");
        app.MapGet("/api/runs/{id:long}/lare-maps/{**path}", LareMapThumbnailAsync).WithTags("runs")
            .WithSummary("A LaRE run's map (a .safetensors file under its output folder) drawn as a grey PNG: per pixel the L2 norm over the 4 latent channels, scaled to the map's own range");
        return app;
    }

    static async Task<IResult> ThumbnailAsync(long id, string? path, int? size, IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, CancellationToken ct)
    {
        var edge = size ?? 128;
        if (edge is < MinSize or > MaxSize)
            return ApiEndpoints.FieldProblem(new Runs.FieldException("size", $"size must be between {MinSize} and {MaxSize}, got {edge}"));
        if (string.IsNullOrEmpty(path) || path.Contains('\0') || path.Contains('\\') || path.Split('/').Any(s => s is "" or "." or ".."))
            return NotFound($"'{path}' is not an image path of run {id}");

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var run = await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == id, ct);
        if (run is null) return NotFound($"no run with id {id}");
        if (DatasetId(run.ConfigJson) is not { } datasetId) return NotFound($"run {id} has no datasetId in its config");
        var dataset = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Id == datasetId, ct);
        if (dataset is null) return NotFound($"no dataset with id {datasetId}");

        // Only images the run scored can be read, so the endpoint cannot be used to browse the disk.
        var scoresFile = paths.Data("runs", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "scores.csv");
        if (!File.Exists(scoresFile)) return NotFound($"run {id} has no scores.csv");
        ScoresTable scores;
        try { scores = ScoresCsv.Read(scoresFile); }
        catch (ScoresCsvException e) { return NotFound($"run {id}'s scores.csv is unreadable: {e.Message}"); }
        if (!scores.Rows.Any(r => string.Equals(r.Path, path, StringComparison.Ordinal))) return NotFound($"'{path}' is not listed in run {id}'s scores.csv");

        var root = PortalPaths.Canonical(dataset.Path);
        var file = PortalPaths.Canonical(Path.Combine(root, path));
        if (!file.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal) || !File.Exists(file))
            return NotFound($"'{path}' is not a file under dataset {datasetId}");

        using var bitmap = SKBitmap.Decode(file);
        if (bitmap is null) return NotFound($"'{path}' could not be decoded as an image");
        return Thumbnail(bitmap, edge, path);
    }

    /// <summary>A JPEG of <paramref name="bitmap"/> with its longest edge at most <paramref name="edge"/> pixels.</summary>
    static IResult Thumbnail(SKBitmap bitmap, int edge, string path)
    {
        var scale = Math.Min(1.0, (double)edge / Math.Max(bitmap.Width, bitmap.Height));
        var info = new SKImageInfo(Math.Max(1, (int)Math.Round(bitmap.Width * scale)), Math.Max(1, (int)Math.Round(bitmap.Height * scale)), SKColorType.Rgba8888, SKAlphaType.Premul);
        using var resized = bitmap.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        if (resized is null) return NotFound($"'{path}' could not be resized");
        using var image = SKImage.FromBitmap(resized);
        using var jpeg = image.Encode(SKEncodedImageFormat.Jpeg, 85);
        return TypedResults.File(jpeg.ToArray(), "image/jpeg");
    }

    static async Task<IResult> AlignedThumbnailAsync(long id, string side, string? path, int? size, PortalPaths paths, CancellationToken ct)
    {
        var edge = size ?? 128;
        if (edge is < MinSize or > MaxSize)
            return ApiEndpoints.FieldProblem(new Runs.FieldException("size", $"size must be between {MinSize} and {MaxSize}, got {edge}"));
        if (side is not ("real" or "reconstruction")) return NotFound($"side must be 'real' or 'reconstruction', got '{side}'");
        if (string.IsNullOrEmpty(path)) return NotFound("no image path");
        var record = paths.Data("aligned", id.ToString(System.Globalization.CultureInfo.InvariantCulture), Forensics.ML.Alignment.AlignmentResult.FileName);
        if (!File.Exists(record)) return NotFound($"run {id} has no {Forensics.ML.Alignment.AlignmentResult.FileName}");
        Forensics.ML.Alignment.AlignmentResult result;
        try { result = await Task.Run(() => Forensics.ML.Alignment.AlignmentResult.Read(record), ct); }
        catch (InvalidDataException e) { return NotFound(e.Message); }
        // Only images the record lists can be read, so the endpoint cannot be used to browse the disk.
        var image = result.Images.FirstOrDefault(i => string.Equals(side == "real" ? i.Input : i.Output, path, StringComparison.Ordinal));
        if (image is null) return NotFound($"'{path}' is not a {side} image of run {id}");
        var file = Path.Combine(side == "real" ? result.InputRoot : result.OutputRoot, path);
        if (!File.Exists(file)) return NotFound($"'{path}' no longer exists");
        using var bitmap = SKBitmap.Decode(file);
        return bitmap is null ? NotFound($"'{path}' could not be decoded as an image") : Thumbnail(bitmap, edge, path);
    }

    static IResult LareMapThumbnailAsync(long id, string? path, int? size, PortalPaths paths)
    {
        var edge = size ?? 128;
        if (edge is < MinSize or > MaxSize)
            return ApiEndpoints.FieldProblem(new Runs.FieldException("size", $"size must be between {MinSize} and {MaxSize}, got {edge}"));
        if (string.IsNullOrEmpty(path) || !path.EndsWith(".safetensors", StringComparison.Ordinal) || path.Contains('\0') || path.Contains('\\')
            || path.Split('/').Any(s => s is "" or "." or ".."))
            return NotFound($"'{path}' is not a map of run {id}");
        var root = PortalPaths.Canonical(paths.Data(LareResults.MapsFolder, id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var file = PortalPaths.Canonical(Path.Combine(root, path));
        if (!file.StartsWith(root + "/", StringComparison.Ordinal) || !File.Exists(file)) return NotFound($"'{path}' is not a map of run {id}");
        using var bitmap = LareMapImage.Draw(file);
        return bitmap is null ? NotFound($"'{path}' holds no float32 map 'lare' of shape [C, H, W]") : Thumbnail(bitmap, edge, path);
    }

    static long? DatasetId(string configJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(configJson);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("datasetId", out var v) && v.TryGetInt64(out var id) ? id : null;
        }
        catch (JsonException) { return null; }
    }

    static IResult NotFound(string detail) =>
        TypedResults.NotFound(new ApiEndpoints.ProblemDetailsLite("https://tools.ietf.org/html/rfc9110#section-15.5.5", "image not found", 404, detail));
}
