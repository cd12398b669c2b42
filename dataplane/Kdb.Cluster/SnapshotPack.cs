using Kdb.Raft;
using Kdb.Storage;

namespace Kdb.Cluster;

/// <summary>
/// One Raft snapshot packed off the group loop. The loop captures the engine (memtable frozen, files pinned: no I/O) and
/// the Raft metadata at the same applied index; a thread of its own writes the checkpoint and packs it into one fsynced
/// file; the loop then hands that file to the log store (by rename) and compacts the log at the captured index. A pack
/// that fails, or that a newer snapshot superseded, leaves nothing behind: the old snapshot and the log stay in use.
/// </summary>
internal sealed class SnapshotPack : IDisposable
{
    private const string PackPattern = "snapshot-*.pack";
    private const string TempPattern = "snapshot-*.checkpoint";
    private readonly IKvCapturedCheckpoint _checkpoint;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Task<uint> _work;
    private bool _handedOver;

    private SnapshotPack(string groupDirectory, IKvCapturedCheckpoint checkpoint, SnapshotMetadata meta, ulong retain, long logBytes,
        Action<CancellationToken>? hook)
    {
        _checkpoint = checkpoint;
        Meta = meta;
        Retain = retain;
        LogBytes = logBytes;
        var name = "snapshot-" + meta.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Path = System.IO.Path.Combine(groupDirectory, name + ".pack");
        var temp = System.IO.Path.Combine(groupDirectory, name + ".checkpoint");
        var token = _cancel.Token;
        // A thread of its own: packing blocks on disk for seconds, which the thread pool must not absorb.
        _work = Task.Factory.StartNew(() => Run(temp, hook, token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The Raft snapshot metadata captured with the checkpoint.</summary>
    public SnapshotMetadata Meta { get; }
    /// <summary>Log entries to keep behind the snapshot.</summary>
    public ulong Retain { get; }
    /// <summary>Log bytes the snapshot was due for (counted again if it fails).</summary>
    public long LogBytes { get; }
    /// <summary>The packed file (valid once <see cref="Succeeded"/>).</summary>
    public string Path { get; }

    public bool IsCompleted => _work.IsCompleted;
    public bool Succeeded => _work.IsCompletedSuccessfully;
    public Exception? Error => _work.Exception?.GetBaseException();
    /// <summary>CRC32C of the packed file.</summary>
    public uint Checksum => _work.Result;
    /// <summary>The engine's own files cover the captured index: the log may drop entries up to it.</summary>
    public bool EnginePersisted => _checkpoint.IsPersisted;

    /// <summary>Loop thread: captures the engine's state at the applied index (which <paramref name="meta"/> describes) and
    /// starts packing it.</summary>
    public static SnapshotPack Start(string groupDirectory, IKvEngine engine, SnapshotMetadata meta, ulong retain, long logBytes,
        Action<CancellationToken>? hook)
    {
        var checkpoint = ((IKvCheckpointSource)engine).CaptureCheckpoint();
        return new SnapshotPack(groupDirectory, checkpoint, meta, retain, logBytes, hook);
    }

    /// <summary>Removes what a crash during packing left (the packed file and the checkpoint directory).</summary>
    public static void DeleteStale(string groupDirectory)
    {
        foreach (var path in Directory.EnumerateFiles(groupDirectory, PackPattern))
        {
            File.Delete(path);
        }
        foreach (var path in Directory.EnumerateDirectories(groupDirectory, TempPattern))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    private uint Run(string temp, Action<CancellationToken>? hook, CancellationToken token)
    {
        try
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
            _checkpoint.WriteTo(temp, token);
            hook?.Invoke(token);
            return CheckpointPacker.PackToFile(temp, Path, token);
        }
        catch
        {
            File.Delete(Path);
            throw;
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
        }
    }

    /// <summary>The log store took the file: it is no longer this pack's to delete.</summary>
    public void HandedOver() => _handedOver = true;

    /// <summary>Stops the packing (waits for it: it stops at its next chunk) and deletes its file unless handed over.</summary>
    public void Dispose()
    {
        _cancel.Cancel();
        try
        {
            _work.Wait();
        }
        catch (AggregateException)
        {
            // Failed or cancelled: discarded either way.
        }
        if (!_handedOver)
        {
            File.Delete(Path);
        }
        _checkpoint.Dispose();
        _cancel.Dispose();
    }
}
