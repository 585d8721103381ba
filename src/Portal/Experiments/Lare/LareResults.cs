namespace Portal.Experiments;

/// <summary>
/// What a "lare" run writes, and the one place that names it: the maps under data/lare/&lt;run&gt; (<see cref="MapsFolder"/>)
/// and its step-0 metrics (time per image, maps computed, from the cache, failed). The result panel and the LaRE² jobs
/// read them through this type.
/// </summary>
public static class LareResults
{
    public const string SecondsPerImage = "seconds_per_image", MapsComputed = "maps_computed", MapsFromCache = "maps_from_cache", MapsFailed = "maps_failed";
    /// <summary>The data folder the maps of every LaRE run live under: data/lare/&lt;run id&gt;.</summary>
    public const string MapsFolder = "lare";
}
