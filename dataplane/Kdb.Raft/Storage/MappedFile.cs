using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Kdb.Raft.Storage;

/// <summary>
/// A snapshot data file read through a read-only memory map, as the <see cref="ReadOnlyMemory{T}"/> the Raft core keeps to
/// send to lagging followers. The data is as large as the group's state machine; held as an array it would stay resident
/// for good, mapped it is page cache the kernel can drop. The mapping follows the file's inode, so it stays valid when the
/// file is renamed or deleted.
/// </summary>
internal sealed unsafe partial class MappedFile : MemoryManager<byte>
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _pointer;
    private readonly int _length;
    private bool _disposed;

    private MappedFile(MemoryMappedFile file, MemoryMappedViewAccessor view, byte* pointer, int length)
    {
        _file = file;
        _view = view;
        _pointer = pointer;
        _length = length;
    }

    /// <summary>Maps a non-empty file of at most 2 GiB (what one <see cref="ReadOnlyMemory{T}"/> can span).</summary>
    public static MappedFile Open(string path)
    {
        var length = new FileInfo(path).Length;
        if (length is 0 or > int.MaxValue)
        {
            throw new InvalidDataException($"a snapshot of {length} bytes cannot be mapped as one blob: {path}");
        }
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedFile(file, view, pointer + view.PointerOffset, (int)length);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Drops this process's resident pages of the mapping (they stay in the page cache; a later read maps them
    /// again): after a full read (a checksum), so the blob costs no resident memory while nobody sends it.</summary>
    public void ReleaseResidentPages()
    {
        var page = Environment.SystemPageSize;
        var start = (nint)_pointer & ~(nint)(page - 1);
        var end = (nint)_pointer + _length;
        if (OperatingSystem.IsLinux())
        {
            _ = Madvise(start, (nuint)(end - start), MadviseDontNeed);
        }
    }

    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new Span<byte>(_pointer, _length);
    }

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    private const int MadviseDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);
}
