namespace Portal.Tests.Components;

/// <summary>The context of the cross-generator and sweep form tests: <see cref="PortalComponentTest"/>, which registers every job.</summary>
public abstract class ProtocolComponentTest : PortalComponentTest;
