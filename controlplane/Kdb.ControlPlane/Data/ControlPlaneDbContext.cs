using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Data;

/// <summary>The control plane's store: Identity's tables plus orgs, keys and tokens.</summary>
public sealed class ControlPlaneDbContext(DbContextOptions<ControlPlaneDbContext> options) : IdentityDbContext<User>(options)
{
    public DbSet<Org> Orgs => Set<Org>();

    public DbSet<Membership> Memberships => Set<Membership>();

    public DbSet<SigningKeyRecord> SigningKeys => Set<SigningKeyRecord>();

    public DbSet<DataProtectionKeyRecord> DataProtectionKeys => Set<DataProtectionKeyRecord>();

    public DbSet<RefreshTokenRecord> RefreshTokens => Set<RefreshTokenRecord>();

    public DbSet<ServiceClientRecord> ServiceClients => Set<ServiceClientRecord>();

    public DbSet<ApiKeyRecord> ApiKeys => Set<ApiKeyRecord>();

    public DbSet<DatabaseRecord> Databases => Set<DatabaseRecord>();

    public DbSet<DatabaseRoleRecord> DatabaseRoles => Set<DatabaseRoleRecord>();

    public DbSet<OperationRecord> Operations => Set<OperationRecord>();

    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();

    public DbSet<NodeRecord> Nodes => Set<NodeRecord>();

    public DbSet<GroupLeaderRecord> GroupLeaders => Set<GroupLeaderRecord>();

    public DbSet<ProxyPosition> ProxyPositions => Set<ProxyPosition>();

    public DbSet<OrgPlanChange> OrgPlanChanges => Set<OrgPlanChange>();

    public DbSet<UsageReceiptRange> UsageReceiptRanges => Set<UsageReceiptRange>();

    public DbSet<UsageHour> UsageHours => Set<UsageHour>();

    public DbSet<AuditEntry> AuditLog => Set<AuditEntry>();

    public DbSet<IdempotencyRecord> IdempotencyKeys => Set<IdempotencyRecord>();

    public DbSet<Invitation> Invitations => Set<Invitation>();

    public DbSet<PasswordResetRecord> PasswordResets => Set<PasswordResetRecord>();

    public DbSet<ConnectionLogEntry> ConnectionLog => Set<ConnectionLogEntry>();

    public DbSet<BackupRecord> Backups => Set<BackupRecord>();

    public DbSet<BackupScheduleRecord> BackupSchedules => Set<BackupScheduleRecord>();

    public DbSet<ScheduledJobRecord> ScheduledJobs => Set<ScheduledJobRecord>();

    public DbSet<BackupKeyRecord> BackupKeys => Set<BackupKeyRecord>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.Entity<User>(e =>
        {
            e.Property(u => u.Name).HasMaxLength(200);
        });
        builder.Entity<Org>(e =>
        {
            e.ToTable("orgs");
            e.HasKey(o => o.Id);
            e.Property(o => o.Id).HasMaxLength(30);
            e.Property(o => o.Name).HasMaxLength(200);
            e.Property(o => o.Plan).HasMaxLength(20);
        });
        builder.Entity<Membership>(e =>
        {
            e.ToTable("memberships");
            e.HasKey(m => new { m.OrgId, m.UserId });
            e.HasIndex(m => m.UserId);
            e.Property(m => m.Role).HasMaxLength(20);
        });
        builder.Entity<SigningKeyRecord>(e =>
        {
            e.ToTable("signing_keys");
            e.HasKey(k => k.Kid);
            e.Property(k => k.Kid).HasMaxLength(64);
            e.Property(k => k.Algorithm).HasMaxLength(10);
        });
        builder.Entity<DataProtectionKeyRecord>(e =>
        {
            e.ToTable("data_protection_keys");
            e.HasKey(k => k.Id);
        });
        builder.Entity<RefreshTokenRecord>(e =>
        {
            e.ToTable("refresh_tokens");
            e.HasKey(t => t.TokenHash);
            e.Property(t => t.TokenHash).HasMaxLength(64);
            e.HasIndex(t => t.FamilyId);
            e.HasIndex(t => t.UserId);
        });
        builder.Entity<ApiKeyRecord>(e =>
        {
            e.ToTable("api_keys");
            e.HasKey(k => k.Id);
            e.Property(k => k.Id).HasMaxLength(30);
            e.Property(k => k.OrgId).HasMaxLength(30);
            e.Property(k => k.Name).HasMaxLength(200);
            e.Property(k => k.Role).HasMaxLength(20);
            e.Property(k => k.SecretHash).HasMaxLength(64);
            e.HasIndex(k => k.OrgId);
        });
        builder.Entity<DatabaseRecord>(e =>
        {
            e.ToTable("databases");
            e.HasKey(d => d.Id);
            e.Property(d => d.Id).HasMaxLength(30);
            e.Property(d => d.OrgId).HasMaxLength(30);
            e.Property(d => d.Name).HasMaxLength(63);
            e.Property(d => d.Status).HasMaxLength(20);
            e.Property(d => d.QuotaState).HasMaxLength(20);
            // Names are unique per org among databases that still exist; a deleted name can be reused.
            e.HasIndex(d => new { d.OrgId, d.Name }).IsUnique().HasFilter("\"Status\" <> 'deleted'");
            e.HasIndex(d => d.TenantId).IsUnique();
            // Versions come only from kdb_bump_routes (migration 0014), under its lock: a new row starts at 0.
            e.Property(d => d.RouteVersion).HasDefaultValue(0L);
            e.HasIndex(d => d.RouteVersion);
            // List pages of an org's live databases walk this index in id order.
            e.HasIndex(d => new { d.OrgId, d.Id }).HasFilter("\"Status\" <> 'deleted'");
            // A leader change bumps every database of the group.
            e.HasIndex(d => d.GroupId);
        });
        builder.Entity<OrgPlanChange>(e =>
        {
            e.ToTable("org_plan_changes");
            e.HasKey(c => c.Id);
            e.Property(c => c.OrgId).HasMaxLength(30);
            e.Property(c => c.FromPlan).HasMaxLength(20);
            e.Property(c => c.ToPlan).HasMaxLength(20);
            e.Property(c => c.ChangedBy).HasMaxLength(64);
            e.HasIndex(c => new { c.OrgId, c.At });
        });
        builder.Entity<GroupLeaderRecord>(e =>
        {
            e.ToTable("group_leaders");
            e.HasKey(g => g.GroupId);
            e.Property(g => g.GroupId).ValueGeneratedNever();
            e.Property(g => g.LeaderNodeId).HasMaxLength(64);
        });
        builder.HasSequence<long>("route_version_seq");
        builder.Entity<ProxyPosition>(e =>
        {
            e.ToTable("proxy_positions");
            e.HasKey(p => p.ProxyId);
            e.Property(p => p.ProxyId).HasMaxLength(64);
        });
        builder.Entity<NodeRecord>(e =>
        {
            e.ToTable("nodes");
            e.HasKey(n => n.NodeId);
            e.Property(n => n.NodeId).HasMaxLength(64);
        });
        builder.Entity<DatabaseRoleRecord>(e =>
        {
            e.ToTable("database_roles");
            e.HasKey(r => new { r.DatabaseId, r.Name });
            e.Property(r => r.Name).HasMaxLength(63);
            e.Property(r => r.Kind).HasMaxLength(20);
        });
        builder.Entity<OperationRecord>(e =>
        {
            e.ToTable("operations");
            e.HasKey(o => o.Id);
            e.Property(o => o.Id).HasMaxLength(30);
            e.Property(o => o.Status).HasMaxLength(20);
            e.Property(o => o.ClaimAttemptId).HasMaxLength(64);
            e.HasIndex(o => o.Status);
        });
        builder.Entity<OutboxMessage>(e =>
        {
            e.ToTable("outbox");
            e.HasKey(m => m.Id);
            e.HasIndex(m => m.DispatchedAt);
        });
        builder.Entity<UsageReceiptRange>(e =>
        {
            e.ToTable("usage_receipt_ranges");
            e.HasKey(r => new { r.Source, r.First });
            e.Property(r => r.Source).HasMaxLength(64);
        });
        builder.Entity<UsageHour>(e =>
        {
            e.ToTable("usage_hourly");
            e.HasKey(u => new { u.DatabaseId, u.HourStart });
            e.Property(u => u.DatabaseId).HasMaxLength(30);
        });
        builder.Entity<AuditEntry>(e =>
        {
            e.ToTable("audit_log");
            e.HasKey(a => a.Id);
            e.Property(a => a.OrgId).HasMaxLength(30);
            e.Property(a => a.Actor).HasMaxLength(64);
            e.Property(a => a.Action).HasMaxLength(200);
            e.Property(a => a.ResourceId).HasMaxLength(64);
            e.Property(a => a.SourceIp).HasMaxLength(64);
            e.HasIndex(a => new { a.OrgId, a.Id });
            // A user's own entries outside any org (/v1/me/audit): as the actor, or as the account acted on.
            e.HasIndex(a => new { a.Actor, a.Id }, "IX_audit_log_Actor_Id_NoOrg").HasFilter("\"OrgId\" IS NULL");
            e.HasIndex(a => new { a.ResourceId, a.Id }, "IX_audit_log_ResourceId_Id_NoOrg").HasFilter("\"OrgId\" IS NULL");
        });
        builder.Entity<IdempotencyRecord>(e =>
        {
            e.ToTable("idempotency_keys");
            e.HasKey(i => new { i.Caller, i.Key });
            e.Property(i => i.Caller).HasMaxLength(64);
            e.Property(i => i.Key).HasMaxLength(100);
            e.Property(i => i.RequestHash).HasMaxLength(64);
            e.HasIndex(i => i.CreatedAt);
        });
        builder.Entity<Invitation>(e =>
        {
            e.ToTable("invitations");
            e.HasKey(i => i.Id);
            e.Property(i => i.Id).HasMaxLength(30);
            e.Property(i => i.OrgId).HasMaxLength(30);
            e.Property(i => i.Email).HasMaxLength(254);
            e.Property(i => i.NormalizedEmail).HasMaxLength(254);
            e.Property(i => i.Role).HasMaxLength(20);
            e.Property(i => i.TokenHash).HasMaxLength(64);
            e.Property(i => i.InvitedBy).HasMaxLength(64);
            e.Property(i => i.AcceptedBy).HasMaxLength(64);
            e.HasIndex(i => i.OrgId);
            e.HasIndex(i => i.NormalizedEmail);
        });
        builder.Entity<PasswordResetRecord>(e =>
        {
            e.ToTable("password_resets");
            e.HasKey(r => r.TokenHash);
            e.Property(r => r.TokenHash).HasMaxLength(64);
            e.HasIndex(r => r.UserId);
        });
        builder.Entity<ConnectionLogEntry>(e =>
        {
            e.ToTable("connection_log");
            e.HasKey(c => c.Id);
            e.Property(c => c.DatabaseId).HasMaxLength(30);
            e.Property(c => c.Kind).HasMaxLength(20);
            e.Property(c => c.Reason).HasMaxLength(200);
            e.Property(c => c.ClientIp).HasMaxLength(64);
            e.Property(c => c.User).HasMaxLength(63);
            e.Property(c => c.Source).HasMaxLength(64);
            e.HasIndex(c => new { c.DatabaseId, c.Id });
        });
        builder.Entity<BackupRecord>(e =>
        {
            e.ToTable("backups");
            e.HasKey(b => b.Id);
            e.Property(b => b.Id).HasMaxLength(30);
            e.Property(b => b.DatabaseId).HasMaxLength(30);
            e.Property(b => b.OrgId).HasMaxLength(30);
            e.Property(b => b.Status).HasMaxLength(20);
            e.Property(b => b.Sha256).HasMaxLength(64);
            e.Property(b => b.KeyId).HasMaxLength(64);
            e.Property(b => b.OperationId).HasMaxLength(30);
            e.HasIndex(b => new { b.DatabaseId, b.Id });
            e.HasIndex(b => b.ExpiresAt);
        });
        builder.Entity<BackupScheduleRecord>(e =>
        {
            e.ToTable("backup_schedules");
            e.HasKey(b => b.DatabaseId);
            e.Property(b => b.DatabaseId).HasMaxLength(30);
            e.Property(b => b.OrgId).HasMaxLength(30);
            e.Property(b => b.Cron).HasMaxLength(100);
            e.HasIndex(b => b.NextRunAt);
        });
        builder.Entity<ScheduledJobRecord>(e =>
        {
            e.ToTable("scheduled_jobs");
            e.HasKey(j => j.Name);
            e.Property(j => j.Name).HasMaxLength(64);
        });
        builder.Entity<BackupKeyRecord>(e =>
        {
            e.ToTable("backup_keys");
            e.HasKey(k => k.KeyId);
            e.Property(k => k.KeyId).HasMaxLength(30);
            e.Property(k => k.OrgId).HasMaxLength(30);
            e.HasIndex(k => k.OrgId);
        });
        builder.Entity<ServiceClientRecord>(e =>
        {
            e.ToTable("service_clients");
            e.HasKey(c => c.ClientId);
            e.Property(c => c.ClientId).HasMaxLength(64);
        });
    }
}
