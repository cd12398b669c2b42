using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Kdb.ControlPlane.Data.Migrations;

// EF Core's design-time package cannot be restored here (its dependencies are absent from the registry),
// so migrations are EF migrations whose bodies are SQL files embedded beside them. The first one is the
// model's own create script (`dotnet Kdb.ControlPlane.dll schema-script`); a test checks that migrating
// an empty database yields exactly the schema the model describes. See docs/controlplane-migrations.md.

/// <summary>The initial schema: Identity, orgs, memberships, signing keys, Data Protection keys, refresh tokens, service clients.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000001_Initial")]
public sealed class Initial : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0001_initial.sql"));
}

internal static class SqlScript
{
    public static string Read(string name)
    {
        var assembly = typeof(SqlScript).Assembly;
        var resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith("." + name, StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

/// <summary>Org API keys.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000002_ApiKeys")]
public sealed class ApiKeys : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0002_api_keys.sql"));
}

/// <summary>Databases, their roles, operations and the transactional outbox.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000003_Databases")]
public sealed class Databases : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0003_databases.sql"));
}

/// <summary>Route-table versions and data-plane nodes.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000004_RoutesNodes")]
public sealed class RoutesNodes : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0004_routes_nodes.sql"));
}

/// <summary>Usage metering: idempotency receipts and hourly sums.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000005_Usage")]
public sealed class Usage : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0005_usage.sql"));
}

/// <summary>The append-only audit log.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000006_AuditLog")]
public sealed class AuditLog : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0006_audit_log.sql"));
}

/// <summary>Stored responses for Idempotency-Key replays.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000007_Idempotency")]
public sealed class Idempotency : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0007_idempotency.sql"));
}

/// <summary>Invitations to orgs and one-time password-reset tokens.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000008_MembersMail")]
public sealed class MembersMail : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0008_members_mail.sql"));
}

/// <summary>The proxies' connection log and the lifting of their failed-login lockouts.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000009_ConnectionLog")]
public sealed class ConnectionLog : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0009_connection_log.sql"));
}

/// <summary>Backups, backup schedules and the control plane's own recurring jobs (the restore drill).</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261122000010_Backups")]
public sealed class Backups : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0010_backups.sql"));
}

/// <summary>Placements (replica nodes per database), group leaders from heartbeats, and list-page indexes.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261201000011_Placements")]
public sealed class Placements : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0011_placements.sql"));
}

/// <summary>Indexes for a user's own audit entries outside any org.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261201000012_UserAudit")]
public sealed class UserAudit : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0012_user_audit.sql"));
}

/// <summary>Org plan history, so invoices price past months by the plans then in effect.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261201000013_PlanHistory")]
public sealed class PlanHistory : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0013_plan_history.sql"));
}

/// <summary>Route versions handed out in commit order, proxy positions shared by every instance, usage receipts as ranges.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261201000014_RoutesPositionsReceipts")]
public sealed class RoutesPositionsReceipts : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0014_routes_positions_receipts.sql"));
}

/// <summary>Operation claims: one provisioning attempt per running operation, and one move per shard group, cluster-wide.</summary>
[DbContext(typeof(ControlPlaneDbContext))]
[Migration("20261202000015_OperationClaims")]
public sealed class OperationClaims : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) => migrationBuilder.Sql(SqlScript.Read("0015_operation_claims.sql"));
}
