using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>
/// The demo on start (after the store's migrations and the recovery of orphaned runs): queues the MiniGenImage build
/// when there is neither a ready dataset of that name nor a queued or running build, and registers the manifest's demo
/// models in the zoo by name (existing names are left alone). Runs in the background, so it never delays start-up; a
/// missing or bad demo.json, a missing model folder or a user's dataset of the same name is logged and skipped.
/// </summary>
public sealed class DemoBootstrap(IServiceScopeFactory scopes, IOptions<PortalOptions> options, PortalPaths paths, ILogger<DemoBootstrap> logger)
    : IHostedService
{
    /// <summary>The background work started by <see cref="StartAsync"/> (completed at once when the demo is disabled).</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public Task StartAsync(CancellationToken ct)
    {
        var demo = options.Value.Demo;
        if (!demo.Enabled)
        {
            logger.LogInformation("Demo: disabled (Portal:Demo:Enabled is false)");
            return Task.CompletedTask;
        }
        Completion = Task.Run(() => RunAsync(demo), CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Completion.WaitAsync(ct).ContinueWith(_ => { }, TaskScheduler.Default);

    async Task RunAsync(DemoOptions demo)
    {
        var file = DemoManifest.PathIn(paths.ModelsDir ?? demo.ResolvedModelsDir());
        try
        {
            DemoManifest manifest;
            try { manifest = DemoManifest.Load(file); }
            catch (DemoManifestException e)
            {
                logger.LogError("Demo: {Error}; MiniGenImage is not built and no demo model is registered", e.Message);
                return;
            }
            using var scope = scopes.CreateScope();
            await EnsureDatasetAsync(scope.ServiceProvider, manifest, demo.DatasetName);
            await RegisterZooAsync(scope.ServiceProvider, manifest);
        }
        catch (Exception e)
        {
            // Never take the portal down: the demo is an extra.
            logger.LogError(e, "Demo: set-up from {Manifest} failed", file);
        }
    }

    async Task EnsureDatasetAsync(IServiceProvider services, DemoManifest manifest, string name)
    {
        var dbFactory = services.GetRequiredService<IDbContextFactory<PortalDb>>();
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            var dataset = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == name);
            if (dataset is not null && !MiniGenImageBuildJob.IsBuilt(dataset))
            {
                logger.LogWarning("Demo: a dataset named '{Name}' (id {Id}) exists and was not built by the demo; it is left as it is and MiniGenImage is not built",
                    name, dataset.Id);
                return;
            }
            if (dataset is { Status: DatasetStatus.Ready })
            {
                logger.LogInformation("Demo: dataset '{Name}' is ready (id {Id}, {Images} images)", name, dataset.Id, dataset.Images);
                // A ready dataset is never rebuilt behind the runs that used it; a changed demo.json is only reported.
                if (MiniGenImageBuildJob.ManifestSha256(dataset) is { } builtFrom && builtFrom != manifest.Sha256)
                    logger.LogWarning("Demo: dataset '{Name}' (id {Id}) was built from another version of {Manifest} (sha256 {Old}, now {New}); " +
                                      "it is kept as it is. To build the current one, register the new build under another name with the " +
                                      "'{Kind}' job, or start on a fresh data folder", name, dataset.Id, manifest.Path, builtFrom[..12], manifest.Sha256[..12], MiniGenImageBuildJob.KindName);
                return;
            }
            var active = await db.Runs.AsNoTracking()
                .Where(r => r.Kind == MiniGenImageBuildJob.KindName && (r.Status == RunStatus.Queued || r.Status == RunStatus.Running))
                .Select(r => (long?)r.Id).FirstOrDefaultAsync();
            if (active is { } runId)
            {
                logger.LogInformation("Demo: the MiniGenImage build is already under way (run {RunId})", runId);
                return;
            }
        }
        var missing = manifest.Generators.Where(g => !Directory.Exists(g.Folder)).Select(g => g.Folder).ToList();
        if (!Directory.Exists(manifest.Photos)) missing.Insert(0, manifest.Photos);
        if (missing.Count > 0)
        {
            logger.LogWarning("Demo: MiniGenImage is not built: {Manifest} names folder(s) that do not exist: {Missing}", manifest.Path, string.Join(", ", missing));
            return;
        }
        try
        {
            var run = await services.GetRequiredService<RunService>().CreateAsync(MiniGenImageBuildJob.KindName,
                new MiniGenImageBuildJob.Config(manifest.Path, name), manifest.Seed, tags: ["minigenimage"]);
            logger.LogInformation("Demo: queued the MiniGenImage build (run {RunId}: {Generators}; {Train}/{Val}/{Test} fakes per generator and split) into {Folder}",
                run.Id, string.Join(", ", manifest.Generators.Select(g => g.Name)), manifest.Train, manifest.Val, manifest.Test, paths.Data(name));
        }
        catch (FieldException e)
        {
            logger.LogError("Demo: the MiniGenImage build was not queued: {Field}: {Error}", e.Field, e.Message);
        }
    }

    async Task RegisterZooAsync(IServiceProvider services, DemoManifest manifest)
    {
        var zoo = services.GetRequiredService<ModelZooService>();
        var dbFactory = services.GetRequiredService<IDbContextFactory<PortalDb>>();
        foreach (var entry in manifest.Zoo)
        {
            await using (var db = await dbFactory.CreateDbContextAsync())
                if (await db.Weights.AnyAsync(w => w.Name == entry.Name))
                {
                    logger.LogDebug("Demo: zoo entry '{Name}' already registered", entry.Name);
                    continue;
                }
            if (!Directory.Exists(entry.Folder))
            {
                logger.LogWarning("Demo: zoo entry '{Name}' not registered: folder {Folder} does not exist", entry.Name, entry.Folder);
                continue;
            }
            try
            {
                var (model, _) = await zoo.RegisterAsync(entry.Name, entry.Folder, entry.Kind, entry.Architecture);
                await AddTrainingCardAsync(dbFactory, model.Id, entry.Folder);
                logger.LogInformation("Demo: registered '{Name}' ({Kind}/{Architecture}) from {Folder} in the zoo (id {Id})",
                    entry.Name, entry.Kind, entry.Architecture, entry.Folder, model.Id);
            }
            catch (FieldException e) when (e.Status == 409)
            {
                logger.LogDebug("Demo: zoo entry '{Name}' was registered concurrently", entry.Name);
            }
            catch (FieldException e)
            {
                logger.LogError("Demo: zoo entry '{Name}' from {Folder} not registered: {Field}: {Error}", entry.Name, entry.Folder, e.Field, e.Message);
            }
        }
    }

    /// <summary>The card the trainer wrote (card.md: data, command, seed, licence) is kept after the zoo's inspection card.</summary>
    static async Task AddTrainingCardAsync(IDbContextFactory<PortalDb> dbFactory, long id, string folder)
    {
        var cardFile = Path.Combine(folder, Forensics.ML.Generators.ModelCard.FileName);
        if (!File.Exists(cardFile)) return;
        var training = (await File.ReadAllTextAsync(cardFile)).TrimEnd();
        await using var db = await dbFactory.CreateDbContextAsync();
        var model = await db.Weights.SingleAsync(w => w.Id == id);
        model.Card = $"{model.Card?.TrimEnd()}\n\n## Training card ({Forensics.ML.Generators.ModelCard.FileName})\n\n{training}\n";
        await db.SaveChangesAsync();
    }
}
