using System.Buffers.Binary;
using System.Text;
using Kdb.Sql.Sessions;
using Kdb.Transactions;

namespace Kdb.Cluster;

/// <summary>Kind of a shard-group log entry. Persisted in Raft logs: append only, never renumber.</summary>
public enum ShardCommandType : byte
{
    /// <summary>A SQL (or key-value) transaction's commit record, validated at apply.</summary>
    Commit = 1,
    /// <summary>Creates a tenant database with its owner role.</summary>
    CreateDatabase = 2,
    /// <summary>Drops a tenant database: one range tombstone over its prefix.</summary>
    DropDatabase = 3,
    /// <summary>Creates, replaces or deletes one role of a database.</summary>
    SetRole = 4,
    /// <summary>Sets a database's quota state (active, read_only, suspended).</summary>
    SetDatabaseState = 5,
    /// <summary>Advances the group's GC threshold.</summary>
    AdvanceGcThreshold = 6,
    /// <summary>One chunk of a large transaction's writes, invisible until its commit record.</summary>
    StageChunk = 7,
    /// <summary>Imports one chunk of a backup into an (empty) database.</summary>
    ImportChunk = 8,
    /// <summary>Switches a database onto the tenant of a staged copy on the same group (in-place restore): the old tenant's
    /// range is tombstoned and the staged database's record goes, in one entry.</summary>
    SwapDatabase = 9,
    /// <summary>A move between groups: a staged copy on this group becomes the database (its id and a state), in one entry,
    /// while the id may still name the source copy on another group until that is dropped.</summary>
    AdoptDatabase = 10,
    /// <summary>Pauses or resumes a database's writes for a move, apart from its quota state (which quota changes set).</summary>
    SetWritesPaused = 11,
    /// <summary>Several <see cref="CreateDatabase"/> commands in one entry (the leader coalesces the creates that arrive in one
    /// loop round): applied in order as one engine batch, each with its own result. Numbered apart so that new single kinds
    /// can keep counting up from 9.</summary>
    CreateDatabaseBatch = 16,
}

/// <summary>Quota state of a database as the nodes enforce it (DESIGN, "Quotas"). Persisted: append only.</summary>
public enum DatabaseState : byte
{
    Active = 0,
    /// <summary>Writes fail with 25006.</summary>
    ReadOnly = 1,
    /// <summary>Statements fail with 53400.</summary>
    Suspended = 2,
}

/// <summary>One role of a tenant database.</summary>
public sealed record DatabaseRole(string Name, SqlRoleKind Kind, string Verifier);

/// <summary>
/// The payload of a shard-group log entry: <c>[format u8][type u8][body]</c>. Bodies are little-endian with
/// length-prefixed strings; the Raft log already checksums every entry.
/// </summary>
public static class ShardCommand
{
    public const byte FormatVersion = 1;

    public static byte[] Commit(CommitRecord record)
    {
        var length = CommitRecordCodec.GetEncodedLength(record);
        var bytes = new byte[2 + length];
        Header(bytes, ShardCommandType.Commit);
        CommitRecordCodec.Encode(record, bytes.AsSpan(2));
        return bytes;
    }

    public static byte[] CreateDatabase(string databaseId, ulong tenantId, DatabaseRole owner)
    {
        var w = new Writer(ShardCommandType.CreateDatabase);
        w.String(databaseId);
        w.U64(tenantId);
        w.Role(owner);
        return w.ToArray();
    }

    public static byte[] DropDatabase(string databaseId)
    {
        var w = new Writer(ShardCommandType.DropDatabase);
        w.String(databaseId);
        return w.ToArray();
    }

    /// <summary>A role with an empty verifier deletes it.</summary>
    public static byte[] SetRole(string databaseId, DatabaseRole role)
    {
        var w = new Writer(ShardCommandType.SetRole);
        w.String(databaseId);
        w.Role(role);
        return w.ToArray();
    }

    public static byte[] SetDatabaseState(string databaseId, DatabaseState state)
    {
        var w = new Writer(ShardCommandType.SetDatabaseState);
        w.String(databaseId);
        w.U8((byte)state);
        return w.ToArray();
    }

    public static byte[] SetWritesPaused(string databaseId, bool paused)
    {
        var w = new Writer(ShardCommandType.SetWritesPaused);
        w.String(databaseId);
        w.U8(paused ? (byte)1 : (byte)0);
        return w.ToArray();
    }

    public static byte[] AdvanceGcThreshold(ulong threshold)
    {
        var w = new Writer(ShardCommandType.AdvanceGcThreshold);
        w.U64(threshold);
        return w.ToArray();
    }

    /// <summary>A chunk of staged writes (encoded as a commit record without reads, for its checked codec).</summary>
    public static byte[] StageChunk(ulong transactionId, uint sequence, CommitRecord writes)
    {
        var length = CommitRecordCodec.GetEncodedLength(writes);
        var bytes = new byte[2 + 12 + length];
        Header(bytes, ShardCommandType.StageChunk);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(2), transactionId);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(10), sequence);
        CommitRecordCodec.Encode(writes, bytes.AsSpan(14));
        return bytes;
    }

    /// <summary>Backup rows for <paramref name="databaseId"/>: the keys carry the backup's tenant prefix, rewritten at apply.</summary>
    public static byte[] ImportChunk(string databaseId, CommitRecord writes)
    {
        var length = CommitRecordCodec.GetEncodedLength(writes);
        var w = new Writer(ShardCommandType.ImportChunk);
        w.String(databaseId);
        var head = w.ToArray();
        var bytes = new byte[head.Length + length];
        head.CopyTo(bytes, 0);
        CommitRecordCodec.Encode(writes, bytes.AsSpan(head.Length));
        return bytes;
    }

    /// <summary><paramref name="databaseId"/> takes over <paramref name="stagedDatabaseId"/>'s tenant and roles; its old data goes.</summary>
    public static byte[] SwapDatabase(string databaseId, string stagedDatabaseId)
    {
        var w = new Writer(ShardCommandType.SwapDatabase);
        w.String(databaseId);
        w.String(stagedDatabaseId);
        return w.ToArray();
    }

    /// <summary>The staged database <paramref name="stagedDatabaseId"/> becomes <paramref name="databaseId"/> (same tenant, data and
    /// roles) with <paramref name="state"/>; a move's flip on the target group.</summary>
    public static byte[] AdoptDatabase(string databaseId, string stagedDatabaseId, DatabaseState state)
    {
        var w = new Writer(ShardCommandType.AdoptDatabase);
        w.String(databaseId);
        w.String(stagedDatabaseId);
        w.U8((byte)state);
        return w.ToArray();
    }

    /// <summary><c>[format][16][count u32]([length u32][CreateDatabase command])*</c>.</summary>
    public static byte[] CreateDatabaseBatch(IReadOnlyList<byte[]> creates)
    {
        var length = 2 + 4;
        foreach (var c in creates)
        {
            length += 4 + c.Length;
        }
        var bytes = new byte[length];
        Header(bytes, ShardCommandType.CreateDatabaseBatch);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(2), (uint)creates.Count);
        var offset = 6;
        foreach (var c in creates)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)c.Length);
            c.CopyTo(bytes, offset + 4);
            offset += 4 + c.Length;
        }
        return bytes;
    }

    /// <summary>The create commands of a batch; <see cref="InvalidDataException"/> when it is malformed or holds anything else.</summary>
    internal static List<ReadOnlyMemory<byte>> SplitCreateBatch(ReadOnlyMemory<byte> command)
    {
        var r = Read(command);
        var count = r.U32();
        // Each create takes at least its 4-byte length and 2-byte header: a count beyond that is a lie, not an allocation.
        if (count == 0 || count > (uint)(command.Length / 6))
        {
            throw new InvalidDataException("create batch count out of range");
        }
        var creates = new List<ReadOnlyMemory<byte>>((int)count);
        var rest = r.Rest;
        for (var i = 0u; i < count; i++)
        {
            if (rest.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(rest.Span) is var n && n > (uint)(rest.Length - 4))
            {
                throw new InvalidDataException("create batch truncated");
            }
            var one = rest.Slice(4, (int)n);
            if (TypeOf(one.Span) != ShardCommandType.CreateDatabase)
            {
                throw new InvalidDataException("a create batch holds only creates");
            }
            creates.Add(one);
            rest = rest[(4 + (int)n)..];
        }
        return rest.IsEmpty ? creates : throw new InvalidDataException("bytes after the last create of a batch");
    }

    public static ShardCommandType TypeOf(ReadOnlySpan<byte> command)
    {
        if (command.Length < 2 || command[0] != FormatVersion || command[1] is 0
            || (command[1] > (byte)ShardCommandType.SetWritesPaused && command[1] != (byte)ShardCommandType.CreateDatabaseBatch))
        {
            throw new InvalidDataException("not a shard command of a known format");
        }
        return (ShardCommandType)command[1];
    }

    internal static Reader Read(ReadOnlyMemory<byte> command) => new(command);

    private static void Header(Span<byte> bytes, ShardCommandType type)
    {
        bytes[0] = FormatVersion;
        bytes[1] = (byte)type;
    }

    private sealed class Writer
    {
        private readonly MemoryStream _stream = new();

        public Writer(ShardCommandType type)
        {
            _stream.WriteByte(FormatVersion);
            _stream.WriteByte((byte)type);
        }

        public void U8(byte value) => _stream.WriteByte(value);

        public void U64(ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            _stream.Write(b);
        }

        public void String(string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, bytes.Length);
            _stream.Write(b);
            _stream.Write(bytes);
        }

        public void Role(DatabaseRole role)
        {
            String(role.Name);
            U8((byte)role.Kind);
            String(role.Verifier);
        }

        public byte[] ToArray() => _stream.ToArray();
    }

    /// <summary>Reads a command body; any overrun is <see cref="InvalidDataException"/>.</summary>
    internal struct Reader(ReadOnlyMemory<byte> data)
    {
        private int _offset = 2;

        public readonly ReadOnlyMemory<byte> Rest => data[_offset..];

        public byte U8()
        {
            Need(1);
            return data.Span[_offset++];
        }

        public ulong U64()
        {
            Need(8);
            var v = BinaryPrimitives.ReadUInt64LittleEndian(data.Span[_offset..]);
            _offset += 8;
            return v;
        }

        public uint U32()
        {
            Need(4);
            var v = BinaryPrimitives.ReadUInt32LittleEndian(data.Span[_offset..]);
            _offset += 4;
            return v;
        }

        public string String()
        {
            var length = (int)U32();
            if (length < 0 || length > 1 << 20)
            {
                throw new InvalidDataException("string length out of range");
            }
            Need(length);
            var s = Encoding.UTF8.GetString(data.Span.Slice(_offset, length));
            _offset += length;
            return s;
        }

        public DatabaseRole Role()
        {
            var name = String();
            var kind = U8();
            if (kind > (byte)SqlRoleKind.ReadOnly)
            {
                throw new InvalidDataException("unknown role kind");
            }
            return new DatabaseRole(name, (SqlRoleKind)kind, String());
        }

        private readonly void Need(int count)
        {
            if (_offset + count > data.Length)
            {
                throw new InvalidDataException("shard command is truncated");
            }
        }
    }
}
