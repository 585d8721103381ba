using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Portal.Tests.Support;

/// <summary>
/// A real PostgreSQL server (Debian's package) for the tests: one cluster per test process, initialised in a temporary
/// folder and listening on a free loopback port, started on first use and stopped when the process exits. PostgreSQL
/// refuses to run as root, so as root its commands run as the package's "postgres" user. The package is installed
/// with apt-get when missing (as root), the way .ci/run does.
/// </summary>
public sealed class PostgresServer
{
    static readonly Lazy<PostgresServer> SharedServer = new(() => new PostgresServer(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>This process's server, started on first use.</summary>
    public static PostgresServer Shared => SharedServer.Value;

    readonly string root;
    readonly string binDir;
    readonly object gate = new();
    bool running;

    /// <summary>The loopback port it listens on.</summary>
    public int Port { get; }
    string DataDir => Path.Combine(root, "data");
    string SocketDir => Path.Combine(root, "socket");
    string LogFile => Path.Combine(root, "server.log");

    PostgresServer()
    {
        binDir = FindOrInstallBinDir();
        RemoveStaleClusters(binDir);
        root = Directory.CreateTempSubdirectory(Prefix).FullName;
        File.WriteAllText(Path.Combine(root, OwnerFile), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(SocketDir);
        if (IsRoot) Run("chown", ["-R", "postgres:postgres", root], asPostgres: false);
        // trust on loopback only: the cluster lives as long as this test process and listens on 127.0.0.1.
        Run(Path.Combine(binDir, "initdb"), ["-D", DataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        Port = LoopbackPort.Free();
        Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Shutdown();
    }

    static bool IsRoot => Environment.UserName == "root";
    const string Prefix = "portal-pg-";
    const string OwnerFile = "owner.pid";

    /// <summary>
    /// The test runner may end a test process before its exit handler has removed the cluster: clusters whose owning
    /// process is gone are stopped (if still running) and deleted when the next one starts.
    /// </summary>
    static void RemoveStaleClusters(string binDir)
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            try
            {
                var owner = Path.Combine(dir, OwnerFile);
                if (!File.Exists(owner) || !int.TryParse(File.ReadAllText(owner), out var pid) || IsAlive(pid)) continue;
                if (File.Exists(Path.Combine(dir, "data", "postmaster.pid")))
                    Run(Path.Combine(binDir, "pg_ctl"), ["stop", "-D", Path.Combine(dir, "data"), "-m", "immediate", "-w", "-t", "30"]);
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception) { /* another process's folder, or one being removed right now: not this run's concern */ }
        }
    }

    static bool IsAlive(int pid)
    {
        try { return !Process.GetProcessById(pid).HasExited; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>A connection string for <paramref name="database"/> on this server.</summary>
    public string ConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database,
        // Short idle lifetime: each test has its own database (and pool), so idle connections are not kept long.
        ConnectionIdleLifetime = 10, ConnectionPruningInterval = 2,
    }.ConnectionString;

    /// <summary>The database name for a test's data directory: a stable hash of its path (two hosts on one folder share one database).</summary>
    public static string DatabaseFor(string dataDir) =>
        "portal_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(dataDir))))[..24];

    /// <summary>Creates <paramref name="database"/> unless it exists; returns its connection string.</summary>
    public string EnsureDatabase(string database)
    {
        using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        connection.Open();
        using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @name", connection);
        exists.Parameters.AddWithValue("name", database);
        if (exists.ExecuteScalar() is null)
        {
            using var create = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
            try { create.ExecuteNonQuery(); }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase) { }
        }
        return ConnectionString(database);
    }

    /// <summary>A new, empty database with a unique name; returns its connection string.</summary>
    public string CreateDatabase() => EnsureDatabase("portal_" + Guid.NewGuid().ToString("N")[..24]);

    /// <summary>Starts the server (after <see cref="Stop"/>); returns once it accepts connections.</summary>
    public void Start()
    {
        lock (gate)
        {
            if (running) return;
            var options = $"-c listen_addresses=127.0.0.1 -c port={Port} -c unix_socket_directories={SocketDir} " +
                          "-c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
            Run(Path.Combine(binDir, "pg_ctl"), ["start", "-D", DataDir, "-l", LogFile, "-w", "-t", "60", "-o", options]);
            running = true;
        }
    }

    /// <summary>Stops the server (fast: open connections are cut, as in a crash of the database host's service).</summary>
    public void Stop()
    {
        lock (gate)
        {
            if (!running) return;
            Run(Path.Combine(binDir, "pg_ctl"), ["stop", "-D", DataDir, "-m", "fast", "-w", "-t", "60"]);
            running = false;
        }
    }

    void Shutdown()
    {
        try
        {
            lock (gate)
                if (running) Run(Path.Combine(binDir, "pg_ctl"), ["stop", "-D", DataDir, "-m", "immediate", "-w", "-t", "30"]);
            Directory.Delete(root, recursive: true);
        }
        catch (Exception) { /* the process is exiting: a left-over temp folder is not worth failing for */ }
    }

    /// <summary>The last lines of the server's log, for failure messages.</summary>
    public string LogTail(int lines = 30) =>
        File.Exists(LogFile) ? string.Join('\n', File.ReadAllLines(LogFile).TakeLast(lines)) : "(no server log)";

    static string FindOrInstallBinDir()
    {
        string? Find() => Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "initdb"))).OrderByDescending(b => b, StringComparer.Ordinal).FirstOrDefault()
            : null;
        if (Find() is { } found) return found;
        if (!IsRoot)
            throw new InvalidOperationException("The PostgreSQL tests need Debian's postgresql (/usr/lib/postgresql/*/bin/initdb): " +
                                                "install it with `apt-get install -y postgresql` (as root; .ci/run does this).");
        Run("apt-get", ["update", "-qq"], asPostgres: false, timeoutSeconds: 600);
        Run("apt-get", ["install", "-y", "-qq", "postgresql"], asPostgres: false, timeoutSeconds: 900);
        return Find() ?? throw new InvalidOperationException("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared");
    }

    static void Run(string file, IReadOnlyList<string> args, bool asPostgres = true, int timeoutSeconds = 120)
    {
        var info = asPostgres && IsRoot
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", file, .. args])
            : new ProcessStartInfo(file, args);
        info.RedirectStandardOutput = info.RedirectStandardError = true;
        info.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var p = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} took over {timeoutSeconds} s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {p.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
    }

}
