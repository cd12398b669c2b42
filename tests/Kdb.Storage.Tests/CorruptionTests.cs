using static Kdb.Storage.Tests.Keys;

namespace Kdb.Storage.Tests;

public sealed class CorruptionTests
{
    private static void Fill(string dir, bool flush, int n = 300)
    {
        using var e = KvEngine.Open(dir, new EngineOptions { BackgroundCompaction = false });
        for (var i = 0; i < n; i++)
        {
            e.Apply(new WriteBatch().Put(K($"key{i:D5}"), K($"value-{i}-" + new string('v', 40))));
        }
        if (flush)
        {
            e.Flush();
        }
    }

    private static void Flip(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        var b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ 0x5A));
    }

    [Fact]
    public void Open_SegmentKeysFlipped_ThrowsNamingFile()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: true);
        var seg = Directory.GetFiles(dir.Path, "*.seg").Single();
        var keysAt = File.ReadAllBytes(seg).AsSpan().IndexOf(K("key00150"));
        Flip(seg, keysAt + 4);
        var ex = Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
        Assert.Equal(seg, ex.FilePath);
        Assert.Contains(Path.GetFileName(seg), ex.Message);
    }

    [Fact]
    public void Get_SegmentValueFlipped_ThrowsNamingFile()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: true);
        var seg = Directory.GetFiles(dir.Path, "*.seg").Single();
        var at = File.ReadAllBytes(seg).AsSpan().IndexOf(K("value-77-"));
        Flip(seg, at + 3);
        using var e = KvEngine.Open(dir.Path);
        var ex = Assert.Throws<StorageCorruptionException>(() => e.Get(K("key00077")));
        Assert.Equal(seg, ex.FilePath);
        Assert.True(e.Get(K("key00078")).Found);
    }

    [Fact]
    public void Open_SegmentFooterOrIndexFlipped_Throws()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: true);
        var seg = Directory.GetFiles(dir.Path, "*.seg").Single();
        var len = new FileInfo(seg).Length;
        Flip(seg, len - 200);
        Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
        Flip(seg, len - 200);
        Flip(seg, len - 20);
        Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
    }

    [Fact]
    public void Open_ManifestFlipped_ThrowsNamingManifest()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: true);
        var manifest = Path.Combine(dir.Path, "MANIFEST");
        Flip(manifest, 30);
        var ex = Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
        Assert.Equal(manifest, ex.FilePath);
    }

    [Fact]
    public void Open_WalFlippedMidFile_ThrowsNamingFileAndOffset()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: false);
        var wal = Directory.GetFiles(dir.Path, "*.wal").OrderBy(f => f).Last(f => new FileInfo(f).Length > 1000);
        var len = new FileInfo(wal).Length;
        Flip(wal, len / 2);
        var ex = Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
        Assert.Equal(wal, ex.FilePath);
        Assert.True(ex.Offset > 0 && ex.Offset <= len / 2);
    }

    [Fact]
    public void Open_TornWalTail_TruncatesAndKeepsEarlierBatches()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: false);
        var wal = Directory.GetFiles(dir.Path, "*.wal").OrderBy(f => f).Last(f => new FileInfo(f).Length > 1000);
        var len = new FileInfo(wal).Length;
        using (var fs = new FileStream(wal, FileMode.Open))
        {
            fs.SetLength(len - 7); // the last record loses its tail
        }
        using (var e = KvEngine.Open(dir.Path))
        {
            Assert.Equal(299UL, e.LastAppliedIndex);
            Assert.True(e.Get(K("key00298")).Found);
            Assert.False(e.Get(K("key00299")).Found);
            e.Apply(new WriteBatch().Put(K("after"), K("x")));
        }
        using (var e = KvEngine.Open(dir.Path))
        {
            Assert.True(e.Get(K("after")).Found);
        }
    }

    [Fact]
    public void Open_GarbageAfterLastRecord_Recovered()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: false, n: 50);
        var wal = Directory.GetFiles(dir.Path, "*.wal").OrderBy(f => f).Last(f => new FileInfo(f).Length > 100);
        using (var fs = new FileStream(wal, FileMode.Append))
        {
            fs.Write(new byte[37]);
        }
        using var e = KvEngine.Open(dir.Path);
        Assert.Equal(50UL, e.LastAppliedIndex);
    }

    [Fact]
    public void Open_MissingSegment_ThrowsNamingFile()
    {
        using var dir = new TestDir();
        Fill(dir.Path, flush: true);
        var seg = Directory.GetFiles(dir.Path, "*.seg").Single();
        File.Delete(seg);
        var ex = Assert.Throws<StorageCorruptionException>(() => KvEngine.Open(dir.Path));
        Assert.Equal(seg, ex.FilePath);
    }
}
