using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Portal.Auth;

/// <summary>A portal account (ASP.NET Core Identity, stored in the portal's own store). Its one role is admin, researcher or viewer.</summary>
public class PortalUser : IdentityUser
{
    public DateTime CreatedAt { get; set; }
}

/// <summary>The three roles. An admin can do everything; a researcher queues and manages their own runs; a viewer reads.</summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string Researcher = "researcher";
    public const string Viewer = "viewer";
    public static readonly IReadOnlyList<string> All = [Admin, Researcher, Viewer];
}

/// <summary>An API token for the CLI and scripts (Authorization: Bearer). Only its SHA-256 is stored; it acts with its user's role.</summary>
public class ApiToken
{
    public long Id { get; set; }
    public string UserId { get; set; } = "";
    public string Name { get; set; } = "";
    /// <summary>Lower-case hex SHA-256 of the token text.</summary>
    public string Hash { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}

/// <summary>One entry of the audit log: who did what to which target, when (UTC).</summary>
public class AuditEvent
{
    public long Id { get; set; }
    public DateTime At { get; set; }
    /// <summary>The acting user's name, or "system" for the portal itself.</summary>
    public string UserName { get; set; } = "";
    /// <summary>e.g. "run.queue", "run.cancel", "run.delete", "dataset.register", "user.create", "token.revoke".</summary>
    public string Action { get; set; } = "";
    /// <summary>e.g. "run:12", "user:alice".</summary>
    public string Target { get; set; } = "";
    public string? Detail { get; set; }
}

class ApiTokenConfiguration : IEntityTypeConfiguration<ApiToken>
{
    public void Configure(EntityTypeBuilder<ApiToken> b)
    {
        b.Property(t => t.Name).HasMaxLength(100);
        b.Property(t => t.Hash).HasMaxLength(64);
        b.HasIndex(t => t.Hash).IsUnique();
        b.HasIndex(t => t.UserId);
        b.HasOne<PortalUser>().WithMany().HasForeignKey(t => t.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

class AuditEventConfiguration : IEntityTypeConfiguration<AuditEvent>
{
    public void Configure(EntityTypeBuilder<AuditEvent> b)
    {
        b.Property(e => e.UserName).HasMaxLength(256);
        b.Property(e => e.Action).HasMaxLength(64);
        b.Property(e => e.Target).HasMaxLength(128);
        b.HasIndex(e => e.At);
    }
}
