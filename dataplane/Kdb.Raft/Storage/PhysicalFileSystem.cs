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

    public IAppendFile CreateLog(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return CreateNew(path);
        }
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new PreallocatedLogFile(handle, 0);
    }

    public IAppendFile OpenLog(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return OpenAppend(path);
        }
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.Read);
        return new PreallocatedLogFile(handle, RandomAccess.GetLength(handle));
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

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(int fd);

    /// <summary>
    /// A log segment whose file is extended with written zeros ahead of the records, so that most syncs change no file size
    /// and need only <c>fdatasync</c>: the records' pages, without the inode write (which ext4 without a journal does as a
    /// second synchronous write after the data) and without allocating blocks at writeback. A sync after the file grew is a
    /// full <c>fsync</c>, so the new size is durable before anything written into the new space is acknowledged. Closing
    /// cuts the zeros off (only the newest segment may end in them; recovery cuts them there).
    /// </summary>
    private sealed class PreallocatedLogFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length) : IAppendFile
    {
        // One extension per MiB of records: a few thousand commits of a small write each.
        private const int Extent = 1 << 20;
        private static readonly byte[] Zeros = new byte[64 << 10];
        private long _length = length;
        private long _allocated = length;
        private bool _grown;

        public long Length => _length;

        public void Write(ReadOnlySpan<byte> data)
        {
            if (_length + data.Length > _allocated)
            {
                var target = (_length + data.Length + Extent - 1) / Extent * Extent;
                for (var at = _allocated; at < target; at += Zeros.Length)
                {
                    RandomAccess.Write(handle, Zeros.AsSpan(0, (int)Math.Min(Zeros.Length, target - at)), at);
                }
                _allocated = target;
                _grown = true;
            }
            RandomAccess.Write(handle, data, _length);
            _length += data.Length;
        }

        public void Sync()
        {
            // A closed handle's number may already belong to another file: syncing that one would report this log durable.
            // The reference also keeps a concurrent Dispose from closing the descriptor under the call.
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                var fd = (int)handle.DangerousGetHandle();
                var grown = _grown;
                _grown = false;
                if ((grown ? Fsync(fd) : Fdatasync(fd)) != 0)
                {
                    _grown |= grown;
                    throw new IOException($"sync of a raft log segment failed (errno {Marshal.GetLastPInvokeError()})");
                }
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }

        public void Dispose()
        {
            if (handle.IsClosed)
            {
                return;
            }
            try
            {
                if (_allocated > _length)
                {
                    RandomAccess.SetLength(handle, _length);
                    if (Fsync((int)handle.DangerousGetHandle()) != 0)
                    {
                        throw new IOException($"fsync of a raft log segment failed (errno {Marshal.GetLastPInvokeError()})");
                    }
                }
            }
            finally
            {
                handle.Dispose();
            }
        }
    }

    private sealed class PhysicalAppendFile(FileStream stream) : IAppendFile
    {
        public long Length => stream.Length;

        public void Write(ReadOnlySpan<byte> data) => stream.Write(data);

        public void Sync() => stream.Flush(flushToDisk: true);

        public void Dispose() => stream.Dispose();
    }
}
