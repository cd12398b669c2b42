using System.Runtime.InteropServices;

namespace Kdb.Raft.Storage;

/// <summary>The real disk.</summary>
public static class PhysicalRaftFileSystem
{
    public static IRaftFileSystem Instance { get; } = new PhysicalFileSystem();
}

internal sealed partial class PhysicalFileSystem : IRaftFileSystem
{
    public void CreateDirectory(string path)
    {
        Directory.CreateDirectory(path);
        var parent = Path.GetDirectoryName(Path.GetFullPath(path));
        if (parent is not null)
        {
            SyncDirectory(parent);
        }
    }

    public IReadOnlyList<string> ListFiles(string directory)
    {
        var files = Directory.GetFiles(directory);
        var names = new string[files.Length];
        for (var i = 0; i < files.Length; i++)
        {
            names[i] = Path.GetFileName(files[i]);
        }
        return names;
    }

    public bool FileExists(string path) => File.Exists(path);

    public byte[] ReadAllBytes(string path) => File.ReadAllBytes(path);

    public IAppendFile CreateNew(string path)
    {
        var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new PhysicalAppendFile(fs);
    }

    public IAppendFile OpenAppend(string path)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        fs.Seek(0, SeekOrigin.End);
        return new PhysicalAppendFile(fs);
    }

    public void WriteAtomic(string path, ReadOnlySpan<byte> data)
    {
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            fs.Write(data);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public void Delete(string path)
    {
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public void Truncate(string path, long length)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
        fs.SetLength(length);
        fs.Flush(flushToDisk: true);
    }

    public void Rename(string from, string to)
    {
        File.Move(from, to, overwrite: true);
        var target = Path.GetDirectoryName(Path.GetFullPath(to))!;
        SyncDirectory(target);
        var source = Path.GetDirectoryName(Path.GetFullPath(from))!;
        if (source != target)
        {
            SyncDirectory(source);
        }
    }

    public ReadOnlyMemory<byte> ReadAllMapped(string path, out IDisposable? owner)
    {
        if (new FileInfo(path).Length == 0)
        {
            owner = null;
            return ReadOnlyMemory<byte>.Empty;
        }
        var mapped = MappedFile.Open(path);
        owner = mapped;
        return mapped.Memory;
    }

    private static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }
        // .NET cannot open a directory as a stream; a rename or create is durable only after the directory itself is fsynced.
        var fd = Open(dir, 0);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {dir} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {dir} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    private sealed class PhysicalAppendFile(FileStream stream) : IAppendFile
    {
        public long Length => stream.Length;

        public void Write(ReadOnlySpan<byte> data) => stream.Write(data);

        public void Sync() => stream.Flush(flushToDisk: true);

        public void Dispose() => stream.Dispose();
    }
}
