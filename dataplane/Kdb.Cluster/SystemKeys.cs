using System.Buffers.Binary;
using System.Text;
using Kdb.Sql.Sessions;

namespace Kdb.Cluster;

/// <summary>
/// The group's own metadata under tenant 0 (DESIGN, "Keys"): databases hosted, roles and verifiers, quota
/// state, the GC threshold and staged transaction chunks. Same 16-byte prefix layout as tenant data.
/// </summary>
internal static class SystemKeys
{
    public const uint DatabasesTable = 1;
    public const uint TenantsTable = 2;
    public const uint SettingsTable = 3;
    public const uint StagedChunksTable = 4;
    public const uint StagedTransactionsTable = 5;

    public static byte[] Prefix(uint table)
    {
        var key = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), table);
        return key;
    }

    public static byte[] TableEnd(uint table) => Prefix(table + 1);

    public static byte[] Database(string databaseId)
    {
        var id = Encoding.UTF8.GetBytes(databaseId);
        var key = new byte[16 + id.Length];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), DatabasesTable);
        id.CopyTo(key, 16);
        return key;
    }

    public static byte[] Tenant(ulong tenantId)
    {
        var key = new byte[24];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), TenantsTable);
        BinaryPrimitives.WriteUInt64BigEndian(key.AsSpan(16), tenantId);
        return key;
    }

    public static readonly byte[] GcThreshold = Setting(1);

    public static byte[] StagedChunk(ulong transactionId, uint sequence)
    {
        var key = new byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), StagedChunksTable);
        BinaryPrimitives.WriteUInt64BigEndian(key.AsSpan(16), transactionId);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(24), sequence);
        return key;
    }

    public static byte[] StagedChunksStart(ulong transactionId) => StagedChunk(transactionId, 0)[..24];

    public static byte[] StagedChunksEnd(ulong transactionId) => transactionId == ulong.MaxValue ? TableEnd(StagedChunksTable) : StagedChunksStart(transactionId + 1);

    public static byte[] StagedTransaction(ulong transactionId)
    {
        var key = new byte[24];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), StagedTransactionsTable);
        BinaryPrimitives.WriteUInt64BigEndian(key.AsSpan(16), transactionId);
        return key;
    }

    /// <summary>First key of a tenant's keyspace.</summary>
    public static byte[] TenantStart(ulong tenantId)
    {
        var key = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenantId);
        return key;
    }

    /// <summary>First key after a tenant's keyspace (null: unbounded, for the last tenant id).</summary>
    public static byte[]? TenantEnd(ulong tenantId) => tenantId == ulong.MaxValue ? null : TenantStart(tenantId + 1);

    private static byte[] Setting(uint id)
    {
        var key = new byte[20];
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), SettingsTable);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(16), id);
        return key;
    }
}

/// <summary>What a group knows of one hosted database.</summary>
public sealed record DatabaseRecord(string DatabaseId, ulong TenantId, DatabaseState State, IReadOnlyList<DatabaseRole> Roles, ulong CreatedIndex)
{
    private const byte Format = 1;

    // Format 2 appends the writes-paused flag; a record without the flag keeps format 1, so records written before it
    // existed and unpaused ones read the same.
    private const byte FormatWithPause = 2;

    /// <summary>A move's write pause (writes fail with 25006), apart from the quota <see cref="State"/>.</summary>
    public bool WritesPaused { get; init; }

    public DatabaseRole? FindRole(string name)
    {
        foreach (var r in Roles)
        {
            if (string.Equals(r.Name, name, StringComparison.Ordinal))
            {
                return r;
            }
        }
        return null;
    }

    internal byte[] Encode()
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(WritesPaused ? FormatWithPause : Format);
        w.Write(DatabaseId);
        w.Write(TenantId);
        w.Write((byte)State);
        w.Write(CreatedIndex);
        w.Write(Roles.Count);
        foreach (var r in Roles)
        {
            w.Write(r.Name);
            w.Write((byte)r.Kind);
            w.Write(r.Verifier);
        }
        if (WritesPaused)
        {
            w.Write(true);
        }
        w.Flush();
        return stream.ToArray();
    }

    internal static DatabaseRecord Decode(byte[] value)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(value), Encoding.UTF8);
            var format = r.ReadByte();
            if (format is not (Format or FormatWithPause))
            {
                throw new InvalidDataException("unknown database record format");
            }
            var id = r.ReadString();
            var tenant = r.ReadUInt64();
            var state = (DatabaseState)r.ReadByte();
            var created = r.ReadUInt64();
            var count = r.ReadInt32();
            if (count is < 0 or > 10_000)
            {
                throw new InvalidDataException("role count out of range");
            }
            var roles = new DatabaseRole[count];
            for (var i = 0; i < count; i++)
            {
                roles[i] = new DatabaseRole(r.ReadString(), (SqlRoleKind)r.ReadByte(), r.ReadString());
            }
            return new DatabaseRecord(id, tenant, state, roles, created) { WritesPaused = format == FormatWithPause && r.ReadBoolean() };
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("database record is truncated", e);
        }
    }
}
