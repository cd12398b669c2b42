using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Kdb.Provisioning.Storage;

/// <summary>
/// The embedded object store: one file per object under a root directory. Each file starts with a header —
/// magic <c>KDBOBJ01</c>, payload length (u64 LE), SHA-256 of the payload — so that every read can verify
/// what it returns. Writes go to a temporary file in the same directory, are fsynced, then renamed over the
/// target, so a crash leaves the old object or the new one, never a torn one.
/// </summary>
internal sealed class FileSystemObjectStore : IObjectStore
{
    private const int HeaderSize = 48;
    private const int CopyBufferSize = 1 << 16;
    private static ReadOnlySpan<byte> Magic => "KDBOBJ01"u8;

    private readonly string _root;
    private readonly SemaphoreSlim _swapGate = new(1, 1);

    public FileSystemObjectStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Root => _root;

    public Task<ObjectInfo?> StatAsync(string key, CancellationToken ct = default) => Task.FromResult(Stat(key));

    public Task<IReadOnlyList<ObjectInfo?>> BulkStatAsync(IReadOnlyList<string> keys, CancellationToken ct = default)
    {
        var result = new ObjectInfo?[keys.Count];
        for (var i = 0; i < keys.Count; i++)
        {
            result[i] = Stat(keys[i]);
        }
        return Task.FromResult<IReadOnlyList<ObjectInfo?>>(result);
    }

    public async Task<byte[]?> LoadAsync(string key, CancellationToken ct = default)
    {
        await using var stream = await LoadStreamAsync(key, ct);
        if (stream is null)
        {
            return null;
        }
        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes, ct);
        // The verifying stream checks the digest when a read meets the end.
        if (await stream.ReadAsync(new byte[1], ct) != 0)
        {
            throw new ObjectCorruptException(key, "longer than its header says");
        }
        return bytes;
    }

    public Task<Stream?> LoadStreamAsync(string key, CancellationToken ct = default)
    {
        var path = PathOf(key);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, CopyBufferSize, useAsync: true);
        }
        catch (FileNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
        try
        {
            var (length, digest) = ReadHeader(file, key);
            return Task.FromResult<Stream?>(new VerifyingStream(file, key, length, digest));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public Task<ObjectInfo> StoreAsync(string key, ReadOnlyMemory<byte> bytes, CancellationToken ct = default) =>
        WriteAsync(key, bytes, SHA256.HashData(bytes.Span), ct);

    public async Task<ObjectInfo> StoreStreamAsync(string key, Stream source, long expectedSize, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expectedSize);
        var path = PathOf(key);
        var temp = TempPathFor(path);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        try
        {
            long written = 0;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBufferSize, useAsync: true))
            {
                file.Position = HeaderSize;
                int n;
                while ((n = await source.ReadAsync(buffer.AsMemory(0, CopyBufferSize), ct)) > 0)
                {
                    written += n;
                    if (written > expectedSize)
                    {
                        break;
                    }
                    hash.AppendData(buffer, 0, n);
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                }
                if (written != expectedSize)
                {
                    throw new InvalidDataException($"object '{key}': expected {expectedSize} bytes, the stream held {(written > expectedSize ? "more" : written.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
                }
                var digest = hash.GetHashAndReset();
                file.Position = 0;
                await file.WriteAsync(Header(written, digest), ct);
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
                File.Move(temp, path, overwrite: true);
                return new ObjectInfo(key, written, Convert.ToHexStringLower(digest));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            TryDelete(temp);
        }
    }

    public async Task<ObjectInfo> StoreChunkAsync(string prefix, ReadOnlyMemory<byte> bytes, CancellationToken ct = default)
    {
        var digest = SHA256.HashData(bytes.Span);
        var key = prefix.TrimEnd('/') + "/" + Convert.ToHexStringLower(digest);
        // Same key, same bytes: an intact copy already there need not be written again.
        if (Stat(key) is { } existing && existing.Size == bytes.Length)
        {
            return existing;
        }
        return await WriteAsync(key, bytes, digest, ct);
    }

    public Task<bool> DeleteAsync(string key, CancellationToken ct = default)
    {
        var path = PathOf(key);
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }
        File.Delete(path);
        return Task.FromResult(true);
    }

    public async IAsyncEnumerable<ObjectInfo> WalkAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        if (prefix.Length > 0)
        {
            ValidateKey(prefix.TrimEnd('/'));
        }
        var files = Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(_root, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(k => !k.Contains(".tmp-", StringComparison.Ordinal) && k.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        foreach (var key in files)
        {
            ct.ThrowIfCancellationRequested();
            if (Stat(key) is { } info)
            {
                yield return info;
            }
        }
        await Task.CompletedTask;
    }

    public async Task<bool> CompareAndSwapAsync(string key, string? expectedSha256, ReadOnlyMemory<byte> bytes, CancellationToken ct = default)
    {
        var path = PathOf(key);
        await _swapGate.WaitAsync(ct);
        try
        {
            // The lock file also serialises swaps made by other processes sharing the directory.
            await using var lockFile = await AcquireLockAsync(path + ".lock", ct);
            var current = Stat(key);
            if (current?.Sha256 != expectedSha256)
            {
                return false;
            }
            await WriteAsync(key, bytes, SHA256.HashData(bytes.Span), ct);
            return true;
        }
        finally
        {
            _swapGate.Release();
        }
    }

    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException)
            {
                await Task.Delay(5, ct);
            }
        }
    }

    private async Task<ObjectInfo> WriteAsync(string key, ReadOnlyMemory<byte> bytes, byte[] digest, CancellationToken ct)
    {
        var path = PathOf(key);
        var temp = TempPathFor(path);
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBufferSize, useAsync: true))
            {
                await file.WriteAsync(Header(bytes.Length, digest), ct);
                await file.WriteAsync(bytes, ct);
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            return new ObjectInfo(key, bytes.Length, Convert.ToHexStringLower(digest));
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private ObjectInfo? Stat(string key)
    {
        var path = PathOf(key);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, HeaderSize);
            var (length, digest) = ReadHeader(file, key);
            return new ObjectInfo(key, length, Convert.ToHexStringLower(digest));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static (long Length, byte[] Digest) ReadHeader(FileStream file, string key)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        if (file.Length < HeaderSize || file.Read(header) != HeaderSize || !header[..8].SequenceEqual(Magic))
        {
            throw new ObjectCorruptException(key, "its header is missing or damaged");
        }
        var length = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        if (length < 0 || length != file.Length - HeaderSize)
        {
            throw new ObjectCorruptException(key, $"it holds {file.Length - HeaderSize} bytes, its header says {length}");
        }
        return (length, header[16..].ToArray());
    }

    private static byte[] Header(long length, byte[] digest)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), length);
        digest.CopyTo(header, 16);
        return header;
    }

    private string PathOf(string key)
    {
        ValidateKey(key);
        var path = Path.Combine(_root, key.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    private static string TempPathFor(string path) => path + ".tmp-" + Guid.NewGuid().ToString("N");

    /// <summary>Keys are relative paths of <c>[a-z0-9._-]</c> segments; no segment may be empty, "." or "..".</summary>
    internal static void ValidateKey(string key)
    {
        if (key.Length is 0 or > 512)
        {
            throw new ArgumentException("an object key is 1 to 512 characters", nameof(key));
        }
        foreach (var segment in key.Split('/'))
        {
            if (segment.Length == 0 || segment is "." or ".." || segment.Contains(".tmp-", StringComparison.Ordinal) || segment.EndsWith(".lock", StringComparison.Ordinal)
                || !segment.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-'))
            {
                throw new ArgumentException($"object key '{key}' is not a path of [a-z0-9._-] segments", nameof(key));
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Reads an object's payload and compares its SHA-256 with the header's when the payload ends.</summary>
    private sealed class VerifyingStream(FileStream file, string key, long length, byte[] digest) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _read;
        private bool _verified;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = file.Read(buffer);
            return Account(buffer[..n]);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await file.ReadAsync(buffer, cancellationToken);
            return Account(buffer.Span[..n]);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Account(ReadOnlySpan<byte> bytes)
        {
            _hash.AppendData(bytes);
            _read += bytes.Length;
            if (bytes.Length == 0 && !_verified)
            {
                _verified = true;
                if (_read != length || !CryptographicOperations.FixedTimeEquals(_hash.GetHashAndReset(), digest))
                {
                    throw new ObjectCorruptException(key, "its SHA-256 does not match the stored one");
                }
            }
            return bytes.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
                _hash.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
