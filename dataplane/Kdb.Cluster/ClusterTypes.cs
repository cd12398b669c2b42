using System.Text;
using System.Text.Json;
using Kdb.Raft;

namespace Kdb.Cluster;

/// <summary>A replica of a shard group: the node's stable id, its Raft member id and its internal (HTTP/2) address.</summary>
public sealed record GroupMember(string NodeId, ulong RaftId, string InternalUrl)
{
    /// <summary>The Raft member id of a node: derived from its stable id, so every node computes the same one.</summary>
    public static ulong RaftIdOf(string nodeId)
    {
        // FNV-1a 64: stable across processes and versions (string.GetHashCode is randomized).
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(nodeId))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }
        return hash == 0 ? 1 : hash;
    }

    private const byte ContextVersion = 1;

    /// <summary>This member as a membership change's context, so every replica learns its address with the change:
    /// version 1, then the node id and the internal URL, each UTF-8 with a 16-bit little-endian length.</summary>
    public byte[] EncodeContext()
    {
        var id = Encoding.UTF8.GetBytes(NodeId);
        var url = Encoding.UTF8.GetBytes(InternalUrl);
        var b = new byte[1 + 2 + id.Length + 2 + url.Length];
        b[0] = ContextVersion;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(1), checked((ushort)id.Length));
        id.CopyTo(b.AsSpan(3));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(3 + id.Length), checked((ushort)url.Length));
        url.CopyTo(b.AsSpan(5 + id.Length));
        return b;
    }

    /// <summary>The member a change's context names, or null when there is none (an entry from before contexts), its
    /// version is unknown, or it does not parse, or it names another node than <paramref name="raftId"/>.</summary>
    public static GroupMember? FromContext(ReadOnlySpan<byte> context, ulong raftId)
    {
        if (context.Length < 5 || context[0] != ContextVersion)
        {
            return null;
        }
        var idLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(context[1..]);
        if (context.Length < 5 + idLength)
        {
            return null;
        }
        var urlLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(context[(3 + idLength)..]);
        if (context.Length != 5 + idLength + urlLength)
        {
            return null;
        }
        var nodeId = Encoding.UTF8.GetString(context.Slice(3, idLength));
        var url = Encoding.UTF8.GetString(context.Slice(5 + idLength, urlLength));
        return nodeId.Length > 0 && RaftIdOf(nodeId) == raftId && Uri.TryCreate(url, UriKind.Absolute, out _)
            ? new GroupMember(nodeId, raftId, url)
            : null;
    }
}

/// <summary>Options of a node's cluster host.</summary>
public sealed record ClusterOptions
{
    public required string DataDirectory { get; init; }
    public required string NodeId { get; init; }
    public required string InternalUrl { get; init; }
    public int TickMs { get; init; } = 100;
    public int ElectionTicks { get; init; } = 10;
    public int HeartbeatTicks { get; init; } = 2;
    public ReadMode ReadMode { get; init; } = ReadMode.ReadIndex;
    /// <summary>The leader sends appends while it fsyncs its own copy (commit latency: the slower of the two, not their sum).</summary>
    public bool AsyncLeaderAppend { get; init; } = true;
    /// <summary>Applied entries between Raft snapshots (each snapshot packs an engine checkpoint), once the log since the
    /// last one is at least a quarter of the engine's size.</summary>
    public ulong SnapshotEveryEntries { get; init; } = 20_000;
    /// <summary>Log bytes since the last snapshot that force one whatever the entry count (and the engine's size, when
    /// larger, is the bar instead).</summary>
    public long SnapshotLogBytes { get; init; } = 64L << 20;
    /// <summary>A snapshot falls due no sooner than this after the last applied import entry (unless the log since the last
    /// one passed four times <see cref="SnapshotLogBytes"/>): packing the whole engine on every replica mid-import competed
    /// with the import's own appends for the disk and the cores. Long enough to outlast a restore's role and verify calls
    /// after its last entry (with 2 s the pack often landed in them) and an entry's stall on a loaded host.</summary>
    public TimeSpan ImportSnapshotQuiet { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Entries kept behind a snapshot so slightly lagging followers catch up from the log.</summary>
    public ulong RetainEntries { get; init; } = 2_000;
    /// <summary>How long a read or proposal waits for a leader before failing.</summary>
    public TimeSpan LeaderWait { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Memtable size of each group's engine.</summary>
    public long MemtableBytes { get; init; } = 32L << 20;
    /// <summary>Tests only: runs on the packing thread of each Raft snapshot (group id), as a slow or failing disk would.</summary>
    internal Action<ulong, CancellationToken>? SnapshotPackHook { get; init; }
}

/// <summary>What the host reports of one local replica.</summary>
public sealed record GroupStatus(ulong GroupId, RaftRole Role, ulong Term, string? LeaderNodeId, ulong CommitIndex, ulong AppliedIndex,
    IReadOnlyList<GroupMember> Members, IReadOnlyList<ulong> Voters, IReadOnlyList<ulong> Learners, int Databases, long StorageBytes, ulong GcThreshold);

/// <summary>Outcome of a proposal: applied here (with its result), or this node is not the leader.</summary>
public readonly record struct ProposeOutcome(ApplyResult? Result, GroupMember? Leader, string? Error = null)
{
    public bool Applied => Result is not null;
}

/// <summary>A shard group or database operation failed in a way the caller should report (no leader, unknown group, timeout).</summary>
public sealed class ClusterException(string code, string message) : Exception(message)
{
    /// <summary>A SQLSTATE-like code: 40001 (retry: no leader yet), 08007 (commit outcome unknown), 42704 (unknown group), 54000 (too large).</summary>
    public string Code { get; } = code;
}

/// <summary>The group.json of a replica: identity and the members it was created with (the log holds later changes).
/// <paramref name="Bootstrap"/>: the group's initial voters (Raft ids), the membership replaying the log starts from: the
/// members at creation, or for a replica that joined (<paramref name="Joined"/>) what its leader told it (absent until then).
/// Absent in files written before the field existed.</summary>
internal sealed record GroupManifest(ulong GroupId, List<GroupMember> Members, bool Joined, List<ulong>? Bootstrap = null)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string PathIn(string groupDirectory) => Path.Combine(groupDirectory, "group.json");

    public void Save(string groupDirectory)
    {
        var path = PathIn(groupDirectory);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(stream, this, Json);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    public static GroupManifest Load(string groupDirectory) =>
        JsonSerializer.Deserialize<GroupManifest>(File.ReadAllText(PathIn(groupDirectory)), Json)
        ?? throw new InvalidDataException($"{PathIn(groupDirectory)} is empty");
}
