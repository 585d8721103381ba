namespace Portal.Runs;

/// <summary>The outcome of a cancel request.</summary>
public enum CancelOutcome { NotFound, AlreadyFinished, Canceled, Requested }
