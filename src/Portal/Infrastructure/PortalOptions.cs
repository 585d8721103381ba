using Forensics.ML.Runtime;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Infrastructure;

/// <summary>The "Portal" configuration section (appsettings.json at the repository's top level).</summary>
public sealed class PortalOptions
{
    public const string Section = "Portal";

    /// <summary>Where the database, manifests and artifacts live. Default ./data under the working directory; PORTAL_DATA_DIR overrides.</summary>
    public string DataDir { get; set; } = "data";
    /// <summary>Folders under which dataset and weight paths may lie; empty means the data directory only.</summary>
    public List<string> AllowedRoots { get; set; } = [];
    /// <summary>Which database holds the store (and, for PostgreSQL, the job queue).</summary>
    public StoreOptions Store { get; set; } = new();
    public JobOptions Jobs { get; set; } = new();
    public TorchOptions Torch { get; set; } = new();
    /// <summary>Serve the Hangfire dashboard to remote admins too (default: local requests only; always admins only).</summary>
    public bool HangfireDashboardRemote { get; set; }
    /// <summary>The MiniGenImage demo: dataset built and demo models registered on start.</summary>
    public DemoOptions Demo { get; set; } = new();
    /// <summary>"portal" (pages, API and, with Jobs:RunWorkers, embedded job workers) or "worker" (jobs only, no web server; same as the `worker` verb).</summary>
    public string Mode { get; set; } = PortalModes.Portal;
    /// <summary>Accounts and access (Portal:Auth).</summary>
    public Auth.AuthOptions Auth { get; set; } = new();
    /// <summary>Bounds on the image files the portal reads (Portal:Images).</summary>
    public ImageOptions Images { get; set; } = new();
    /// <summary>Upper bounds of the jobs' size-like config fields (Portal:Limits).</summary>
    public ConfigLimits Limits { get; set; } = new();
}

/// <summary>
/// Bounds on image files from folders many people can write to: a registration scan lists a file over a limit as
/// unreadable, by name, without decoding it; an evaluation refuses an image over its own, smaller, limit.
/// </summary>
public sealed class ImageOptions
{
    /// <summary>Largest width x height a scan decodes (decompression bombs: a tiny PNG can declare 20000 x 20000).</summary>
    public long MaxPixels { get; set; } = Forensics.ML.Imaging.ImageLimits.DefaultMaxPixels;
    /// <summary>Largest image file read whole.</summary>
    public long MaxFileBytes { get; set; } = Forensics.ML.Imaging.ImageLimits.DefaultMaxFileBytes;
    /// <summary>Largest width x height an evaluation scores at full size; larger images are refused by name (policy "refuse").</summary>
    public long MaxEvalPixels { get; set; } = Forensics.ML.Evaluation.EvalOptions.DefaultMaxPixels;

    /// <summary>The scan's limits.</summary>
    public Forensics.ML.Imaging.ImageLimits ScanLimits() => new() { MaxPixels = MaxPixels, MaxFileBytes = MaxFileBytes };
}

/// <summary>The process modes of <see cref="PortalOptions.Mode"/>.</summary>
public static class PortalModes
{
    public const string Portal = "portal";
    public const string Worker = "worker";
}

/// <summary>The MiniGenImage demo (models/demo/demo.json): built into the data directory and registered on first start.</summary>
public sealed class DemoOptions
{
    /// <summary>Queue the MiniGenImage build and register the demo models on start.</summary>
    public bool Enabled { get; set; } = true;
    /// <summary>The models folder holding demo/demo.json; empty means the copy next to the app (the repository's models/ at build time). A relative path is taken under the working directory.</summary>
    public string ModelsDir { get; set; } = "";
    /// <summary>The name the built dataset is registered under.</summary>
    public string DatasetName { get; set; } = "minigenimage";

    /// <summary>The models folder as an absolute path.</summary>
    public string ResolvedModelsDir() =>
        string.IsNullOrWhiteSpace(ModelsDir) ? Path.Combine(AppContext.BaseDirectory, "models") : Path.GetFullPath(ModelsDir);
}

/// <summary>
/// The store's database. "sqlite" (the default, embedded): ConnectionStrings:Portal names a file under the data directory
/// and Hangfire's queue lives in this process's memory. "postgres" (a team): ConnectionStrings:Portal is an Npgsql
/// connection string (required), and the store and Hangfire's queue (schema "hangfire") share that database, so several
/// portal processes can serve and work from it.
/// </summary>
public sealed class StoreOptions
{
    /// <summary>The embedded default.</summary>
    public const string Sqlite = "sqlite";
    /// <summary>PostgreSQL through Npgsql, with Hangfire.PostgreSql for the queue.</summary>
    public const string Postgres = "postgres";

    /// <summary>"sqlite" (default) or "postgres".</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>True for "postgres" (any case); throws for a name that is neither.</summary>
    public bool IsPostgres => Provider.Trim().ToLowerInvariant() switch
    {
        Sqlite or "" => false,
        Postgres or "postgresql" => true,
        _ => throw new InvalidOperationException($"Portal:Store:Provider is '{Provider}'; use '{Sqlite}' or '{Postgres}'"),
    };
}

/// <summary>How jobs are executed in this process.</summary>
public sealed class JobOptions
{
    /// <summary>Run jobs in this process (false: a web node that only queues).</summary>
    public bool RunWorkers { get; set; } = true;
    /// <summary>Workers for light jobs (registration, scans, reports). The device queue always has exactly one.</summary>
    public int LightWorkers { get; set; } = 2;
    /// <summary>Workers for runs that wait on other runs (pipelines): cheap, so many pipelines can wait at once.</summary>
    public int OrchestrationWorkers { get; set; } = 8;
    /// <summary>How often a running job writes its progress and heartbeat, and checks for cancellation; also the period of the worker's row heartbeat.</summary>
    public double HeartbeatSeconds { get; set; } = 1.0;
    /// <summary>
    /// The device kind ("cpu" or "cuda") of a device-heavy run whose config has no "device" field. Empty: the kind of this
    /// node's Portal:Torch:Device, so a single portal always queues on the device queue it serves itself.
    /// </summary>
    public string DefaultDevice { get; set; } = "";
    /// <summary>
    /// The non-device queues this process serves besides its own device queue, comma-separated: "light", "orchestration",
    /// both (default) or "none" (a GPU box that only takes device jobs).
    /// </summary>
    public string Queues { get; set; } = $"{JobQueues.Light},{JobQueues.Orchestration}";
    /// <summary>A running run whose heartbeat is older than this is taken over by another worker (from its last checkpoint).</summary>
    public double OrphanAfterSeconds { get; set; } = 30;
    /// <summary>
    /// How many times a run may be started (claimed) before an orphaned run is failed instead of taken over: a run whose
    /// worker keeps dying (an OOM killer, a poison input) is not re-run at every start. At least 1.
    /// </summary>
    public int MaxAttempts { get; set; } = 3;
}
