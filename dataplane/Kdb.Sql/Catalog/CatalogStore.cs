using System.Buffers.Binary;
using System.Text.Json;
using Kdb.Sql.Codec;
using Kdb.Sql.Transactions;

namespace Kdb.Sql.Catalog;

/// <summary>
/// Where a tenant's catalog lives: one record at <c>[tenant][0][0]</c> (a format byte, then JSON). Every
/// transaction that writes point-reads it, so DDL conflicts with every concurrent writer of the database
/// and DDL is transactional for free. Readers reuse a decoded copy while the record's version is unchanged.
/// Sequence values live beside it at <c>[tenant][0][1][sequence id]</c>.
/// </summary>
internal sealed class CatalogStore
{
    private const byte FormatByte = 1;
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };
    private readonly Lock _cacheLock = new();
    private (ulong Version, CatalogData Data)? _cache;
    private (ulong SnapshotVersion, CatalogData Data)? _lastSnapshot;

    public CatalogStore(ulong tenant)
    {
        Tenant = tenant;
        CatalogKey = KeyEncoder.Prefix(tenant, 0, 0);
    }

    public ulong Tenant { get; }

    public byte[] CatalogKey { get; }

    public byte[] SequenceKey(uint sequenceId)
    {
        var key = new byte[KeyEncoder.PrefixLength + 4];
        KeyEncoder.Prefix(Tenant, 0, 1).CopyTo(key, 0);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(KeyEncoder.PrefixLength), sequenceId);
        return key;
    }

    /// <summary>The catalog as the transaction sees it (its own uncommitted DDL included).</summary>
    public CatalogData Load(SqlTransaction transaction, CatalogData? pending)
    {
        if (pending is not null)
        {
            return pending;
        }

        // A snapshot at the same version as the last one sees the same catalog: skip even the version lookup
        // (read-mostly workloads open many snapshots of an unchanged store).
        var snapshotVersion = transaction.ReadVersion;
        lock (_cacheLock)
        {
            if (_lastSnapshot is { } last && last.SnapshotVersion == snapshotVersion)
            {
                return last.Data;
            }
        }

        var version = transaction.Snapshot.NewestVersion(CatalogKey);
        lock (_cacheLock)
        {
            if (_cache is { } cached && cached.Version == version)
            {
                _lastSnapshot = (snapshotVersion, cached.Data);
                return cached.Data;
            }
        }

        var data = version == 0 ? new CatalogData() : Decode(transaction.Snapshot.Get(CatalogKey).Value);
        lock (_cacheLock)
        {
            if (_cache is null || _cache.Value.Version < version)
            {
                _cache = (version, data);
            }
        }

        return data;
    }

    public static CatalogData Decode(byte[]? bytes)
    {
        if (bytes is null)
        {
            return new CatalogData();
        }

        if (bytes.Length == 0 || bytes[0] != FormatByte)
        {
            throw new SqlException("XX001", "catalog record has an unknown format");
        }

        try
        {
            var data = JsonSerializer.Deserialize<CatalogData>(bytes.AsSpan(1), JsonOptions)
                ?? throw new SqlException("XX001", "catalog record is empty");
            if (data.Format != CatalogData.CurrentFormat)
            {
                throw new SqlException("XX001", $"catalog format {data.Format} is not supported by this version of kdb");
            }

            return data;
        }
        catch (JsonException e)
        {
            throw new SqlException("XX001", "catalog record is corrupt: " + e.Message);
        }
    }

    public static byte[] Encode(CatalogData data)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(data, JsonOptions);
        var bytes = new byte[json.Length + 1];
        bytes[0] = FormatByte;
        json.CopyTo(bytes, 1);
        return bytes;
    }

    /// <summary>A deep copy for DDL to change.</summary>
    public static CatalogData Clone(CatalogData data) => Decode(Encode(data));
}
