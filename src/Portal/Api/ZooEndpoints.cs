using Forensics.ML.Inspection;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Api;

/// <summary>POST /api/models body: a name, a path under an allowed root, and optionally the kind and architecture (else inferred).</summary>
public sealed record RegisterModelRequest(string? Name, string? Path, string? Kind, string? Architecture);
/// <summary>PUT /api/models/{id}/name body: the new name.</summary>
public sealed record RenameModelRequest(string? Name);
/// <summary>201 answer to a model registration.</summary>
public sealed record RegisterModelResponse(long Id, string Kind, string? Architecture);

/// <summary>A zoo entry; Inspection (key report, MACs) only on GET /api/models/{id}.</summary>
public sealed record ModelDto(long Id, string Name, string Kind, string? Architecture, string Path, string? Format, long Bytes, string? Sha256,
    string? Card, long? SourceRunId, DateTime CreatedAt, ModelInspection? Inspection = null)
{
    public static ModelDto From(ModelWeights w, ModelInspection? inspection = null) =>
        new(w.Id, w.Name, w.Kind, w.Architecture, w.Path, w.Format, w.Bytes, w.Sha256, w.Card, w.SourceRunId, w.CreatedAt, inspection);
}

/// <summary>The model zoo's API: register, list, read, and the alignment-versus-generation cost.</summary>
public static class ZooEndpoints
{
    public static IEndpointRouteBuilder MapZooApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/models").WithTags("models");
        api.MapPost("", RegisterAsync)
            .WithSummary("Register weights (file or diffusers/transformers folder): 201 with the id; 400 naming the field (a load that is not clean names the keys); 409 when the name is taken");
        api.MapGet("", async (string? kind, ModelZooService zoo) => (await zoo.ListAsync(kind)).Select(w => ModelDto.From(w)).ToList())
            .WithSummary("The zoo, by name; filter by kind (detector, autoencoder, unet, text-encoder, clip)");
        api.MapGet("/{id:long}", async (long id, ModelZooService zoo) =>
            await zoo.GetAsync(id) is { } w ? Results.Ok(ModelDto.From(w, await zoo.InspectionAsync(w))) : NotFound(id))
            .WithSummary("One model with its card and inspection (key report, MACs)");
        api.MapPut("/{id:long}/name", async (long id, RenameModelRequest? body, ModelZooService zoo, CancellationToken ct) =>
            {
                try
                {
                    return await zoo.RenameAsync(id, body?.Name, ct) is { } w ? Results.Ok(ModelDto.From(w)) : NotFound(id);
                }
                catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
            })
            .WithSummary("Rename a model (the name the leaderboard and matrix show): {\"name\": \"...\"}; 400 naming the field, 409 when the name is taken");
        api.MapGet("/cost", CostAsync)
            .WithSummary("Alignment (encode + decode) vs generation (steps x UNet + decode) MACs of one image: ?autoencoder=ID&unet=ID&steps=50&size=256");
        return app;
    }

    static IResult NotFound(long id) =>
        TypedResults.NotFound(new ApiEndpoints.ProblemDetailsLite("https://tools.ietf.org/html/rfc9110#section-15.5.5", "model not found", 404, $"no model with id {id}"));

    static async Task<IResult> RegisterAsync(RegisterModelRequest? body, ModelZooService zoo, CancellationToken ct)
    {
        if (body is null) return ApiEndpoints.FieldProblem(new FieldException("body", "a JSON body {\"name\", \"path\"} is required"));
        try
        {
            var (model, _) = await zoo.RegisterAsync(body.Name, body.Path, body.Kind, body.Architecture, ct);
            return TypedResults.Created($"/api/models/{model.Id}", new RegisterModelResponse(model.Id, model.Kind, model.Architecture));
        }
        catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
    }

    static async Task<IResult> CostAsync(long? autoencoder, long? unet, int? steps, int? size, ModelZooService zoo, CancellationToken ct)
    {
        if (autoencoder is null) return ApiEndpoints.FieldProblem(new FieldException("autoencoder", "autoencoder (a zoo id) is required"));
        if (unet is null) return ApiEndpoints.FieldProblem(new FieldException("unet", "unet (a zoo id of a unet or a latent diffusion generator) is required"));
        try { return TypedResults.Ok(await zoo.CostAsync(autoencoder.Value, unet.Value, steps, size ?? ModelZooService.CostImageSize, ct)); }
        catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
    }
}
