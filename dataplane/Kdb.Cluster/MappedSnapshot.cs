using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Kdb.Cluster;

/// <summary>
/// A packed snapshot file read through a memory map, as the <see cref="ReadOnlyMemory{T}"/> the Raft core keeps to send to
/// lagging followers. The blob is as large as the group's engine; held as an array it would stay resident for good (a
/// million idle databases' worth), mapped it is page cache the kernel can drop. The file is unlinked once mapped, so a
/// crash leaves nothing behind but a stray file that <see cref="DeleteStale"/> removes at open.
/// </summary>
internal sealed unsafe partial class MappedSnapshot : MemoryManager<byte>
{
    private const string Pattern = "snapshot-*.pack";
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _pointer;
    private readonly int _length;
    private bool _disposed;

    private MappedSnapshot(MemoryMappedFile file, MemoryMappedViewAccessor view, byte* pointer, int length)
    {
        _file = file;
        _view = view;
        _pointer = pointer;
        _length = length;
    }

    public static string PathFor(string directory, ulong index) =>
        Path.Combine(directory, "snapshot-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".pack");

    public static void DeleteStale(string directory)
    {
        foreach (var path in Directory.EnumerateFiles(directory, Pattern))
        {
            File.Delete(path);
        }
    }

    /// <summary>Maps the file and unlinks it (the mapping keeps its pages).</summary>
    public static MappedSnapshot OpenAndUnlink(string path)
    {
        var length = new FileInfo(path).Length;
        if (length is 0 or > int.MaxValue)
        {
            throw new InvalidDataException($"a snapshot of {length} bytes cannot be sent as one blob");
        }
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        File.Delete(path);
        return new MappedSnapshot(file, view, pointer + view.PointerOffset, (int)length);
    }

    /// <summary>Drops this process's resident pages of the mapping (they stay in the page cache; a later read maps them
    /// again): called once the blob has been written out, so it costs no resident memory while nobody sends it.</summary>
    public void ReleaseResidentPages()
    {
        var page = Environment.SystemPageSize;
        var start = (nint)_pointer & ~(nint)(page - 1);
        var end = (nint)_pointer + _length;
        _ = Madvise(start, (nuint)(end - start), MadviseDontNeed);
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
