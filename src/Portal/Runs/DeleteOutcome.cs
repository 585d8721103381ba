namespace Portal.Runs;

/// <summary>The outcome of a delete request.</summary>
public enum DeleteOutcome { NotFound, NotFinished, Deleted }
