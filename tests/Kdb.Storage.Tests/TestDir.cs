namespace Kdb.Storage.Tests;

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TestDir : IDisposable
{
    public TestDir() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kdb-storage-" + Guid.NewGuid().ToString("N")));

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Keys
{
    public static byte[] K(string s) => System.Text.Encoding.UTF8.GetBytes(s);
    public static string S(byte[] b) => System.Text.Encoding.UTF8.GetString(b);
}

/// <summary>Orders byte strings like the engine (lexicographic, shorter prefix first).</summary>
internal sealed class ByteComparer : IComparer<byte[]>
{
    public static readonly ByteComparer Instance = new();
    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
