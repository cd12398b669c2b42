using System.Security.Cryptography;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Tests;

public sealed class ObjectStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-objects-" + Guid.NewGuid().ToString("N"));
    private readonly FileSystemObjectStore _store;

    public ObjectStoreTests() => _store = new FileSystemObjectStore(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Store_ThenLoadFromANewInstance_ReturnsTheSameBytesAndDigest()
    {
        var bytes = RandomNumberGenerator.GetBytes(100_000);

        var info = await _store.StoreAsync("a/b/c.bin", bytes);

        var reopened = new FileSystemObjectStore(_root);
        Assert.Equal(bytes, await reopened.LoadAsync("a/b/c.bin"));
        Assert.Equal(new ObjectInfo("a/b/c.bin", bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes))), info);
        Assert.Equal(info, await reopened.StatAsync("a/b/c.bin"));
        Assert.Null(await reopened.LoadAsync("a/b/missing"));
        Assert.Null(await reopened.StatAsync("nothing"));
    }

    [Fact]
    public async Task FlippedByte_IsDetectedByLoadAndByLoadStream()
    {
        var bytes = RandomNumberGenerator.GetBytes(5000);
        await _store.StoreAsync("x", bytes);
        var path = Path.Combine(_root, "x");
        var raw = await File.ReadAllBytesAsync(path);
        raw[^1] ^= 1;
        await File.WriteAllBytesAsync(path, raw);

        var e = await Assert.ThrowsAsync<ObjectCorruptException>(() => _store.LoadAsync("x"));
        Assert.Equal("x", e.Key);
        await using var stream = await _store.LoadStreamAsync("x");
        await Assert.ThrowsAsync<ObjectCorruptException>(() => stream!.CopyToAsync(Stream.Null));
    }

    [Fact]
    public async Task TruncatedOrGarbageFile_IsReportedCorrupt()
    {
        await _store.StoreAsync("t", RandomNumberGenerator.GetBytes(3000));
        var path = Path.Combine(_root, "t");
        var raw = await File.ReadAllBytesAsync(path);
        await File.WriteAllBytesAsync(path, raw[..(raw.Length / 2)]);
        await Assert.ThrowsAsync<ObjectCorruptException>(() => _store.LoadAsync("t"));

        await File.WriteAllBytesAsync(path, RandomNumberGenerator.GetBytes(10));
        await Assert.ThrowsAsync<ObjectCorruptException>(() => _store.StatAsync("t"));
    }

    [Fact]
    public async Task StoreStream_WithTheWrongLength_StoresNothing()
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => _store.StoreStreamAsync("s", new MemoryStream(new byte[10]), 11));
        await Assert.ThrowsAsync<InvalidDataException>(() => _store.StoreStreamAsync("s", new MemoryStream(new byte[12]), 11));
        Assert.Null(await _store.StatAsync("s"));
        Assert.Empty(Directory.GetFiles(_root, "*", SearchOption.AllDirectories));

        var bytes = RandomNumberGenerator.GetBytes(200_000);
        var info = await _store.StoreStreamAsync("s", new MemoryStream(bytes), bytes.Length);
        Assert.Equal(bytes.Length, info.Size);
        Assert.Equal(bytes, await _store.LoadAsync("s"));
    }

    [Fact]
    public async Task StoreChunk_IsContentAddressed_AndWalkListsInKeyOrder()
    {
        var a = await _store.StoreChunkAsync("chunks", "same"u8.ToArray());
        var b = await _store.StoreChunkAsync("chunks", "same"u8.ToArray());
        var c = await _store.StoreChunkAsync("chunks", "other"u8.ToArray());

        Assert.Equal(a, b);
        Assert.Equal("chunks/" + a.Sha256, a.Key);
        var listed = new List<ObjectInfo>();
        await foreach (var o in _store.WalkAsync("chunks/"))
        {
            listed.Add(o);
        }
        Assert.Equal(new[] { a.Key, c.Key }.Order(StringComparer.Ordinal), listed.Select(o => o.Key));
        var stats = await _store.BulkStatAsync([c.Key, "chunks/none", a.Key]);
        Assert.Equal([c, null, a], stats);
        Assert.True(await _store.DeleteAsync(a.Key));
        Assert.False(await _store.DeleteAsync(a.Key));
    }

    [Fact]
    public async Task CompareAndSwap_OnlyOneOfManyConcurrentWritersWins()
    {
        Assert.True(await _store.CompareAndSwapAsync("m", null, "v1"u8.ToArray()));
        Assert.False(await _store.CompareAndSwapAsync("m", null, "v2"u8.ToArray()));
        var current = (await _store.StatAsync("m"))!.Sha256;

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => _store.CompareAndSwapAsync("m", current, new[] { (byte)i })));

        Assert.Single(results, r => r);
        Assert.Single((await _store.LoadAsync("m"))!);
    }

    [Theory]
    [InlineData("")]
    [InlineData("../escape")]
    [InlineData("a//b")]
    [InlineData("/abs")]
    [InlineData("Upper")]
    [InlineData("a/./b")]
    [InlineData("x.lock")]
    public async Task BadKeys_AreRefused(string key)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _store.StoreAsync(key, new byte[1]));
    }
}
