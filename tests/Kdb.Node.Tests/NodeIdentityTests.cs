namespace Kdb.Node.Tests;

public sealed class NodeIdentityTests
{
    [Fact]
    public void LoadOrCreate_IsStableAcrossRestarts()
    {
        using var dir = new TempDir();

        var first = NodeIdentity.LoadOrCreate(dir.Path);
        var second = NodeIdentity.LoadOrCreate(dir.Path);

        Assert.Matches("^node_[0-9a-f]{16}$", first.NodeId);
        Assert.Equal(first.NodeId, second.NodeId);
    }

    [Fact]
    public void LoadOrCreate_CorruptIdFile_RefusesToInventANewIdentity()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "node-id"), "garbage");

        var ex = Assert.Throws<InvalidDataException>(() => NodeIdentity.LoadOrCreate(dir.Path));

        Assert.Contains("node-id", ex.Message, StringComparison.Ordinal);
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kdb-node-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
