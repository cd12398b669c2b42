using System.Text.Json;
using Kdb.Contracts.V1;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Backups;

/// <summary>One encrypted chunk of a backup: the content address (SHA-256 of the stored bytes) and its size.</summary>
internal sealed record ChunkRef(string Sha256, long Size);

/// <summary>
/// What a backup is, stored in clear beside its encrypted chunks at <c>backups/{backupId}/manifest.json</c>:
/// which key sealed it, the Raft index it is consistent at, totals that a restore checks (plaintext SHA-256,
/// rows, the export's CRC32C), and the database's roles (sealed with the same key: verifiers stay secret).
/// </summary>
internal sealed record BackupManifest(
    int Version,
    string BackupId,
    string DatabaseId,
    string OrgId,
    ulong TenantId,
    string KeyId,
    ulong RaftIndex,
    long Rows,
    ulong TotalCrc32C,
    long PlaintextBytes,
    string PlaintextSha256,
    long StoredBytes,
    string StoredSha256,
    string SealedRoles,
    IReadOnlyList<ChunkRef> Chunks,
    DateTimeOffset CreatedAt,
    double DurationSeconds)
{
    public const int CurrentVersion = 1;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string KeyOf(string backupId) => $"backups/{backupId}/manifest.json";

    public static string ChunkKey(string sha256) => "chunks/" + sha256;

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>The manifest of a backup, or null when the store has none (never taken, or expired).</summary>
    public static async Task<BackupManifest?> LoadAsync(IObjectStore store, string backupId, CancellationToken ct)
    {
        var bytes = await store.LoadAsync(KeyOf(backupId), ct);
        if (bytes is null)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<BackupManifest>(bytes, Json) is { Version: CurrentVersion } m ? m : throw new InvalidDataException("unknown manifest version");
        }
        catch (JsonException e)
        {
            throw new ObjectCorruptException(KeyOf(backupId), "the manifest is not valid JSON: " + e.Message);
        }
    }

    public BackupResult Result => new(StoredBytes, StoredSha256, RaftIndex, KeyId);

    public static byte[] SerializeRoles(IReadOnlyList<RoleVerifier> roles) => JsonSerializer.SerializeToUtf8Bytes(roles, Json);

    public static IReadOnlyList<RoleVerifier> DeserializeRoles(byte[] json) => JsonSerializer.Deserialize<List<RoleVerifier>>(json, Json) ?? [];
}

/// <summary>
/// The org of a database, as provisioning recorded it at creation before <c>BackupRequested</c> carried
/// <c>OrgId</c>; read only for a request from an older sender, never written any more.
/// </summary>
internal sealed record DatabaseRecordInfo(string DatabaseId, string OrgId, ulong TenantId)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string KeyOf(string databaseId) => $"databases/{databaseId}.json";

    public static async Task<DatabaseRecordInfo?> LoadAsync(IObjectStore store, string databaseId, CancellationToken ct) =>
        await store.LoadAsync(KeyOf(databaseId), ct) is { } bytes ? JsonSerializer.Deserialize<DatabaseRecordInfo>(bytes, Json) : null;
}
