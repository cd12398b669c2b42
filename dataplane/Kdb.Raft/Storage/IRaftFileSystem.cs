namespace Kdb.Raft.Storage;

/// <summary>The few file operations the durable log needs, so tests can substitute a disk that loses unsynced writes.</summary>
public interface IRaftFileSystem
{
    void CreateDirectory(string path);
    /// <summary>Names (not paths) of the files directly in <paramref name="directory"/>.</summary>
    IReadOnlyList<string> ListFiles(string directory);
    bool FileExists(string path);
    byte[] ReadAllBytes(string path);
    /// <summary>Creates a new empty file and makes its directory entry durable.</summary>
    IAppendFile CreateNew(string path);
    /// <summary>Opens an existing file for appending at its end.</summary>
    IAppendFile OpenAppend(string path);

    /// <summary>Creates a log segment: like <see cref="CreateNew"/>, but the real disk may extend the file with zeros ahead of
    /// the writes (a reader finds the end by the records' checksums) and cuts them off when the file is closed.</summary>
    IAppendFile CreateLog(string path) => CreateNew(path);

    /// <summary>Opens the newest log segment (already cut to its last whole record) for appending, as <see cref="CreateLog"/>.</summary>
    IAppendFile OpenLog(string path) => OpenAppend(path);
    /// <summary>Replaces <paramref name="path"/> atomically: temp file, fsync, rename, directory fsync.</summary>
    void WriteAtomic(string path, ReadOnlySpan<byte> data);
    void Delete(string path);
    /// <summary>Cuts a file to <paramref name="length"/> bytes and fsyncs it.</summary>
    void Truncate(string path, long length);

    /// <summary>Moves a file (replacing the target) and makes the move durable. The default copies, for simulated disks.</summary>
    void Rename(string from, string to)
    {
        WriteAtomic(to, ReadAllBytes(from));
        Delete(from);
    }

    /// <summary>The whole file as memory: the real disk maps it (<paramref name="owner"/> unmaps it), the default reads it.</summary>
    ReadOnlyMemory<byte> ReadAllMapped(string path, out IDisposable? owner)
    {
        owner = null;
        return ReadAllBytes(path);
    }
}

/// <summary>An append-only file handle.</summary>
public interface IAppendFile : IDisposable
{
    long Length { get; }
    void Write(ReadOnlySpan<byte> data);
    /// <summary>Makes every byte written so far durable (fsync).</summary>
    void Sync();
}
