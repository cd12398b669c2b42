using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Kdb.Storage;

/// <summary>CRC32C, durable file replacement and directory fsync.</summary>
internal static partial class FileUtil
{
    public static uint Crc32C(ReadOnlySpan<byte> data, uint crc = 0)
    {
        crc = ~crc;
        var i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }
        for (; i < data.Length; i++)
        {
            crc = BitOperations.Crc32C(crc, data[i]);
        }
        return ~crc;
    }

    /// <summary>Writes <paramref name="path"/> via temp file + fsync + rename + directory fsync, so a
    /// crash leaves either the old or the new file, never a torn one.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1))
        {
            fs.Write(content);
            fs.Flush(true);
        }
        File.Move(tmp, path, overwrite: true);
        FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static void FsyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }
        var fd = Open(dir, 0); // O_RDONLY
        if (fd < 0)
        {
            throw new IOException($"cannot open directory '{dir}' for fsync (errno {Marshal.GetLastPInvokeError()})");
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Hard-links (immutable segment files) or copies when linking is impossible.</summary>
    public static void LinkOrCopy(string source, string target)
    {
        if ((OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && Link(source, target) == 0)
        {
            return;
        }
        File.Copy(source, target);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string oldPath, string newPath);
}
