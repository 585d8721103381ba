using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Portal.Store;

/// <summary>Registration state of a dataset.</summary>
public enum DatasetStatus { Registering, Ready, Failed }

/// <summary>A registered image folder: its layout, counts and the manifest of every file (kept as an artifact file).</summary>
public class Dataset
{
    public long Id { get; set; }
    public string Name { get; set; } = "";
    /// <summary>Absolute, canonical path; always under one of the allowed roots.</summary>
    public string Path { get; set; } = "";
    /// <summary>"genimage" or "real-fake"; null until the first scan.</summary>
    public string? Layout { get; set; }
    public DatasetStatus Status { get; set; } = DatasetStatus.Registering;
    public DateTime CreatedAt { get; set; }
    public DateTime? ScannedAt { get; set; }
    /// <summary>The registration run that produced the current manifest, or the one under way.</summary>
    public long? RegistrationRunId { get; set; }
    /// <summary>Readable images.</summary>
    public int Images { get; set; }
    public int IgnoredFiles { get; set; }
    /// <summary>SHA-256 over the sorted (path, file hash) list: identifies the content.</summary>
    public string? ContentHash { get; set; }
    /// <summary>The full manifest (gzip JSON), relative to the data directory.</summary>
    public string? ManifestPath { get; set; }
    /// <summary>Format -> count, as JSON.</summary>
    public string FormatsJson { get; set; } = "{}";
    /// <summary>Size summary, as JSON.</summary>
    public string SizesJson { get; set; } = "{}";
    /// <summary>Where the data came from (for derived sets: source dataset, model, seed...), as JSON.</summary>
    public string? LineageJson { get; set; }
    /// <summary>The user name that registered it (null: the portal itself).</summary>
    public string? RegisteredBy { get; set; }

    public List<DatasetSubset> Subsets { get; set; } = [];
    public List<UnreadableFile> Unreadable { get; set; } = [];
}

/// <summary>Count of readable images of one (generator, split, label) cell.</summary>
public class DatasetSubset
{
    public long Id { get; set; }
    public long DatasetId { get; set; }
    public string Generator { get; set; } = "";
    public string Split { get; set; } = "";
    /// <summary>"real" or "fake".</summary>
    public string Label { get; set; } = "";
    public int Count { get; set; }
}

/// <summary>A file that looked like an image but could not be decoded, with the reason.</summary>
public class UnreadableFile
{
    public long Id { get; set; }
    public long DatasetId { get; set; }
    /// <summary>Relative to the dataset folder.</summary>
    public string Path { get; set; } = "";
    public string Reason { get; set; } = "";
}

class DatasetConfiguration : IEntityTypeConfiguration<Dataset>
{
    public void Configure(EntityTypeBuilder<Dataset> b)
    {
        b.Property(d => d.Name).HasMaxLength(200);
        b.HasIndex(d => d.Name).IsUnique();
        b.HasIndex(d => d.Path);
        b.Property(d => d.Status).HasConversion(s => s.ToString().ToLowerInvariant(), s => Enum.Parse<DatasetStatus>(s, true)).HasMaxLength(16);
        b.HasMany(d => d.Subsets).WithOne().HasForeignKey(s => s.DatasetId).OnDelete(DeleteBehavior.Cascade);
        b.HasMany(d => d.Unreadable).WithOne().HasForeignKey(u => u.DatasetId).OnDelete(DeleteBehavior.Cascade);
    }
}
