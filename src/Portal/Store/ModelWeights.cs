using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Portal.Store;

/// <summary>A weights file in the model zoo: a detector checkpoint, an autoencoder, a UNet, a text encoder, a CLIP tower.</summary>
public class ModelWeights
{
    public long Id { get; set; }
    public string Name { get; set; } = "";
    /// <summary>"detector", "autoencoder", "unet", "text-encoder", "clip".</summary>
    public string Kind { get; set; } = "";
    /// <summary>e.g. "res50nodown", "autoencoder-kl".</summary>
    public string? Architecture { get; set; }
    /// <summary>Absolute path of the file or folder; always under one of the allowed roots.</summary>
    public string Path { get; set; } = "";
    public string? Format { get; set; }
    public long Bytes { get; set; }
    public string? Sha256 { get; set; }
    /// <summary>The model card (markdown): data, command, seed, licence.</summary>
    public string? Card { get; set; }
    /// <summary>The training run that produced it, if any.</summary>
    public long? SourceRunId { get; set; }
    public DateTime CreatedAt { get; set; }
    /// <summary>The user name that registered it (null: the portal itself).</summary>
    public string? RegisteredBy { get; set; }
}

class ModelWeightsConfiguration : IEntityTypeConfiguration<ModelWeights>
{
    public void Configure(EntityTypeBuilder<ModelWeights> b)
    {
        b.Property(w => w.Name).HasMaxLength(200);
        b.HasIndex(w => w.Name).IsUnique();
        // The leaderboard names a checkpoint by its zoo entry, found by path.
        b.HasIndex(w => w.Path);
        b.Property(w => w.Kind).HasMaxLength(32);
    }
}
