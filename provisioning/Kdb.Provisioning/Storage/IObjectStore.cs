namespace Kdb.Provisioning.Storage;

/// <summary>What the store knows of one object: its key, size and the SHA-256 (lowercase hex) of its bytes.</summary>
public sealed record ObjectInfo(string Key, long Size, string Sha256);

/// <summary>An object failed its checksum on read: the bytes on disk are not the bytes that were stored.</summary>
public sealed class ObjectCorruptException(string key, string detail) : IOException($"object '{key}' is corrupt: {detail}")
{
    public string Key { get; } = key;
}

/// <summary>
/// The kdb object-storage plane (issue 9): named objects under slash-separated keys of
/// <c>[a-z0-9._-]</c> segments. Every read verifies the object's checksum (a mismatch throws
/// <see cref="ObjectCorruptException"/>); every write is atomic (readers see the old object or the new one).
/// The filesystem store is the embedded default; an S3-compatible store fits behind the same interface.
/// </summary>
public interface IObjectStore
{
    /// <summary>The object's size and digest, or null when there is no such object.</summary>
    Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default);

    /// <summary>The stat of each key in order (null for a missing one).</summary>
    Task<IReadOnlyList<ObjectInfo?>> BulkStatAsync(IReadOnlyList<string> keys, CancellationToken ct = default);

    /// <summary>The whole object, verified; null when there is no such object.</summary>
    Task<byte[]?> LoadAsync(string key, CancellationToken ct = default);

    /// <summary>
    /// A stream over the object's bytes; the checksum is checked when the stream reaches its end (a
    /// mismatch throws from the last read). Null when there is no such object.
    /// </summary>
    Task<Stream?> LoadStreamAsync(string key, CancellationToken ct = default);

    /// <summary>Stores (or replaces) an object atomically.</summary>
    Task<ObjectInfo> StoreAsync(string key, ReadOnlyMemory<byte> bytes, CancellationToken ct = default);

    /// <summary>Stores a stream of exactly <paramref name="expectedSize"/> bytes; any other length throws and stores nothing.</summary>
    Task<ObjectInfo> StoreStreamAsync(string key, Stream source, long expectedSize, CancellationToken ct = default);

    /// <summary>
    /// Stores content-addressed bytes under <c>{prefix}/{sha256}</c> and returns that key; storing the same bytes
    /// twice writes them once.
    /// </summary>
    Task<ObjectInfo> StoreChunkAsync(string prefix, ReadOnlyMemory<byte> bytes, CancellationToken ct = default);

    /// <summary>Deletes an object; false when there was none.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken ct = default);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>, in key order.</summary>
    IAsyncEnumerable<ObjectInfo> WalkAsync(string prefix, CancellationToken ct = default);

    /// <summary>
    /// Replaces the object only if its current digest is <paramref name="expectedSha256"/> (null: only if it does
    /// not exist). Returns false, changing nothing, when someone else changed it first. For manifests.
    /// </summary>
    Task<bool> CompareAndSwapAsync(string key, string? expectedSha256, ReadOnlyMemory<byte> bytes, CancellationToken ct = default);
}
