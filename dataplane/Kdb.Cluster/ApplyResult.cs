using System.Buffers.Binary;
using Kdb.Transactions;

namespace Kdb.Cluster;

/// <summary>Outcome of applying one shard command. Sent between nodes for forwarded proposals: append only.</summary>
public enum ApplyStatus : byte
{
    Ok = 0,
    /// <summary>A commit record failed validation; <see cref="ApplyResult.Verdict"/> says why (40001).</summary>
    Rejected = 1,
    NotFound = 2,
    AlreadyExists = 3,
    /// <summary>The command is malformed or not allowed (for example a commit for tenant 0).</summary>
    Invalid = 4,
    /// <summary>The database is read-only (25006).</summary>
    ReadOnly = 5,
    /// <summary>The database is suspended (53400).</summary>
    Suspended = 6,
    /// <summary>The database's writes are paused while it moves to another group (25006, retried by clients).</summary>
    WritesPaused = 7,
}

/// <summary>What the proposer of a command learns once it is applied at <see cref="Index"/>.</summary>
public readonly record struct ApplyResult(ApplyStatus Status, ulong Index, CommitVerdict Verdict = CommitVerdict.Valid, ulong ConflictVersion = 0, string? Message = null)
{
    public bool IsOk => Status == ApplyStatus.Ok;

    public const int EncodedLength = 1 + 8 + 1 + 8;

    /// <summary>Fixed-size encoding (the message is not sent: every replica can rebuild it).</summary>
    public byte[] Encode()
    {
        var b = new byte[EncodedLength];
        b[0] = (byte)Status;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(1), Index);
        b[9] = (byte)Verdict;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(10), ConflictVersion);
        return b;
    }

    public static ApplyResult Decode(ReadOnlySpan<byte> b)
    {
        if (b.Length != EncodedLength || b[0] > (byte)ApplyStatus.WritesPaused || b[9] > (byte)CommitVerdict.ReadVersionFromTheFuture)
        {
            throw new InvalidDataException("not an apply result");
        }
        return new ApplyResult((ApplyStatus)b[0], BinaryPrimitives.ReadUInt64LittleEndian(b[1..]), (CommitVerdict)b[9], BinaryPrimitives.ReadUInt64LittleEndian(b[10..]));
    }
}
