using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kdb.PgWire.Auth;
using Kdb.Sql.Sessions;
using Kdb.Storage;

namespace Kdb.Node.Standalone;

/// <summary>A database role of the standalone node: its kind and its SCRAM-SHA-256 verifier (never a password).</summary>
public sealed record StandaloneRole(string Name, SqlRoleKind Kind, string Verifier);

/// <summary>A database of the standalone node: its name, tenant id and roles.</summary>
public sealed record StandaloneDatabaseOptions(string Name, ulong TenantId, IReadOnlyDictionary<string, StandaloneRole> Roles);

/// <summary>
/// Settings of <c>Node:Mode=standalone</c>, read from configuration section <c>Standalone</c>:
/// <c>Durability</c> (SyncPerBatch | Periodic | None), <c>StatementTimeout</c>, <c>IdleSessionTimeout</c>,
/// <c>MaxConnections</c>, <c>DevelopmentTokensOnLoopback</c>, <c>TlsCertificatePath</c>/<c>TlsCertificatePassword</c>
/// and <c>Databases:&lt;name&gt;</c> with <c>TenantId</c> and <c>Roles:&lt;role&gt;</c> (<c>Kind</c>: owner, readwrite,
/// readonly; <c>Password</c>, hashed into a verifier at start, or <c>Verifier</c>).
/// </summary>
public sealed record StandaloneOptions
{
    public DurabilityMode Durability { get; init; } = DurabilityMode.SyncPerBatch;

    /// <summary>Bytes the engine's memtable holds before a flush (<c>Standalone:MemtableBytes</c>; 0: the engine's default).</summary>
    public long MemtableBytes { get; init; }

    public TimeSpan StatementTimeout { get; init; }

    public TimeSpan IdleSessionTimeout { get; init; }

    public int MaxConnections { get; init; } = 100;

    public bool DevelopmentTokensOnLoopback { get; init; }

    public string? TlsCertificatePath { get; init; }

    public string? TlsCertificatePassword { get; init; }

    public IReadOnlyList<StandaloneDatabaseOptions> Databases { get; init; } = [];

    /// <summary>Reads and validates the section; errors name the offending key.</summary>
    /// <exception cref="InvalidOperationException">A setting is missing or invalid.</exception>
    public static StandaloneOptions Read(IConfiguration configuration)
    {
        var section = configuration.GetSection("Standalone");
        var durabilityText = section["Durability"] ?? nameof(DurabilityMode.SyncPerBatch);
        if (!Enum.TryParse<DurabilityMode>(durabilityText, ignoreCase: true, out var durability) || !Enum.IsDefined(durability))
        {
            throw new InvalidOperationException($"Standalone:Durability = '{durabilityText}' is not one of SyncPerBatch, Periodic, None.");
        }

        var databases = new List<StandaloneDatabaseOptions>();
        var tenants = new Dictionary<ulong, string>();
        foreach (var db in section.GetSection("Databases").GetChildren())
        {
            var tenant = db["TenantId"] is { } t
                ? ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed != 0
                    ? parsed
                    : throw new InvalidOperationException($"Standalone:Databases:{db.Key}:TenantId = '{t}' is not a non-zero u64.")
                : DefaultTenant(db.Key);
            if (!tenants.TryAdd(tenant, db.Key))
            {
                throw new InvalidOperationException($"Standalone:Databases:{db.Key} has the tenant id {tenant} of database '{tenants[tenant]}'.");
            }

            var roles = new Dictionary<string, StandaloneRole>(StringComparer.Ordinal);
            foreach (var role in db.GetSection("Roles").GetChildren())
            {
                roles[role.Key] = ReadRole(db.Key, role);
            }

            if (roles.Count == 0)
            {
                throw new InvalidOperationException($"Standalone:Databases:{db.Key} has no Roles: nobody could log in.");
            }

            databases.Add(new StandaloneDatabaseOptions(db.Key, tenant, roles));
        }

        if (databases.Count == 0)
        {
            throw new InvalidOperationException("Standalone mode needs at least one database: set Standalone:Databases:<name>:Roles:<role>:Password (or Verifier) and Kind.");
        }

        return new StandaloneOptions
        {
            Durability = durability,
            MemtableBytes = Math.Max(0, section.GetValue("MemtableBytes", 0L)),
            StatementTimeout = section.GetValue("StatementTimeout", TimeSpan.Zero),
            IdleSessionTimeout = section.GetValue("IdleSessionTimeout", TimeSpan.Zero),
            MaxConnections = section.GetValue("MaxConnections", 100),
            DevelopmentTokensOnLoopback = section.GetValue("DevelopmentTokensOnLoopback", false),
            TlsCertificatePath = section["TlsCertificatePath"],
            TlsCertificatePassword = section["TlsCertificatePassword"],
            Databases = databases,
        };
    }

    /// <summary>
    /// A database configured without a tenant id gets one derived from its name, so it stays the same across
    /// restarts (the data lives under it).
    /// </summary>
    internal static ulong DefaultTenant(string name)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("kdb-standalone-tenant:" + name));
        var tenant = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(hash);
        return tenant == 0 ? 1 : tenant;
    }

    private static StandaloneRole ReadRole(string database, IConfigurationSection role)
    {
        var where = $"Standalone:Databases:{database}:Roles:{role.Key}";
        var kind = (role["Kind"] ?? "owner").ToLowerInvariant() switch
        {
            "owner" => SqlRoleKind.Owner,
            "readwrite" => SqlRoleKind.ReadWrite,
            "readonly" => SqlRoleKind.ReadOnly,
            var other => throw new InvalidOperationException($"{where}:Kind = '{other}' is not one of owner, readwrite, readonly."),
        };
        string verifier;
        if (role["Verifier"] is { Length: > 0 } configured)
        {
            verifier = ScramSha256Verifier.TryParse(configured, out _)
                ? configured
                : throw new InvalidOperationException($"{where}:Verifier is not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>).");
        }
        else if (role["Password"] is { Length: > 0 } password)
        {
            // Hashed at start and only the verifier is kept: the plaintext never reaches the data directory.
            verifier = ScramSha256Verifier.Create(password).ToString();
        }
        else
        {
            throw new InvalidOperationException($"{where} needs a Password or a Verifier.");
        }

        return new StandaloneRole(role.Key, kind, verifier);
    }
}
