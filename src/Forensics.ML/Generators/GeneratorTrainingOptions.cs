namespace Forensics.ML.Generators;

/// <summary>
/// What every generator trainer (train-vae, train-ldm, train-gan) shares: its data and output folders, the optimisation
/// schedule, the seed, checkpointing and the card's source line. Each trainer adds its model's options.
/// </summary>
/// <param name="Data">Folder of training images (PNG/JPEG, searched recursively).</param>
/// <param name="Output">Output folder (weights, configs, card.md and the resume checkpoint).</param>
public abstract record GeneratorTrainingOptions(string Data, string Output)
{
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Training images per step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Adam learning rate (each trainer sets its own default).</summary>
    public virtual double LearningRate { get; init; } = 1e-3;

    /// <summary>Seed of the initial weights and of every step's draws.</summary>
    public long Seed { get; init; }

    /// <summary>Steps between checkpoints.</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>Stop this run after that many steps (checkpoint written). Null: run to the end.</summary>
    public int? StopAfter { get; init; }

    /// <summary>Steps between progress lines.</summary>
    public int ProgressEvery { get; init; } = 10;

    /// <summary>The command line that produced the model, for the card.</summary>
    public string Source { get; init; } = "";

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad schedule option; <paramref name="minBatch"/>: the smallest batch the model trains with.</summary>
    protected void ValidateSchedule(int minBatch = 1)
    {
        if (Steps < 1) throw new ArgumentException($"--steps must be at least 1, not {Steps}");
        if (BatchSize < minBatch)
            throw new ArgumentException($"--batch must be at least {minBatch}{(minBatch > 1 ? " (batch norm)" : "")}, not {BatchSize}");
        if (!(LearningRate > 0)) throw new ArgumentException($"--lr must be positive, not {LearningRate}");
        if (StopAfter is < 1) throw new ArgumentException($"--stop-after must be at least 1, not {StopAfter}");
    }
}
