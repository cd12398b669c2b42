namespace Kdb.Transactions;

/// <summary>
/// Newest versions as the state machine sees them when it applies an entry. The storage engine
/// implements this; every replica answers the same because compaction drops a tombstone only at or
/// below the replicated GC threshold.
/// </summary>
public interface IVersionSource
{
    /// <summary>
    /// The newest version that touched <paramref name="key"/>: a live value, a tombstone, or a range
    /// tombstone covering it; 0 when the key was never written.
    /// </summary>
    ulong NewestVersion(ReadOnlySpan<byte> key);

    /// <summary>The newest version of anything in [<paramref name="start"/>, <paramref name="end"/>), range tombstones overlapping it included; 0 when none.</summary>
    ulong NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end);
}

/// <summary>Outcome of validating a commit record. Persisted in apply results: values only ever appended.</summary>
public enum CommitVerdict : byte
{
    /// <summary>Nothing read changed since the read version: the writes apply.</summary>
    Valid = 0,

    /// <summary>A key or range read was written after the read version (SQLSTATE 40001).</summary>
    Conflict = 1,

    /// <summary>The read version is below the GC threshold, so conflicts can no longer be seen (SQLSTATE 40001).</summary>
    SnapshotTooOld = 2,

    /// <summary>The read version is not before the commit's own version: a bug or a forged record.</summary>
    ReadVersionFromTheFuture = 3,
}

/// <summary>A verdict, with the key and version that caused a conflict.</summary>
public readonly record struct CommitValidation(CommitVerdict Verdict, ReadOnlyMemory<byte> ConflictKey, ulong ConflictVersion)
{
    /// <summary>True when the writes may apply.</summary>
    public bool IsValid => Verdict == CommitVerdict.Valid;

    /// <summary>The SQLSTATE a client sees: 00000, or 40001 serialization_failure (XX000 for a forged read version).</summary>
    public string SqlState => Verdict switch
    {
        CommitVerdict.Valid => "00000",
        CommitVerdict.ReadVersionFromTheFuture => "XX000",
        _ => "40001",
    };

    /// <summary>The message for the client.</summary>
    public string Message => Verdict switch
    {
        CommitVerdict.Valid => "committed",
        CommitVerdict.Conflict => $"could not serialize access due to read/write dependencies among transactions (a key read was written at version {ConflictVersion})",
        CommitVerdict.SnapshotTooOld => "could not serialize access: snapshot too old",
        _ => "internal error: commit record read version is not before its commit version",
    };
}

/// <summary>The deterministic check every replica runs when it applies a commit record (DESIGN).</summary>
public static class CommitValidator
{
    /// <summary>
    /// Validates <paramref name="record"/> about to apply at <paramref name="commitVersion"/>: valid when
    /// no key it read, point or inside a read range, has a version above its read version.
    /// </summary>
    public static CommitValidation Validate(CommitRecord record, IVersionSource versions, ulong commitVersion, ulong gcThreshold)
    {
        if (record.ReadVersion >= commitVersion)
        {
            return new CommitValidation(CommitVerdict.ReadVersionFromTheFuture, default, record.ReadVersion);
        }

        // Below the threshold, tombstones the reader never saw may already be compacted away.
        if (record.ReadVersion < gcThreshold)
        {
            return new CommitValidation(CommitVerdict.SnapshotTooOld, default, gcThreshold);
        }

        foreach (var key in record.PointReads)
        {
            var version = versions.NewestVersion(key.Span);
            if (version > record.ReadVersion)
            {
                return new CommitValidation(CommitVerdict.Conflict, key, version);
            }
        }

        foreach (var range in record.RangeReads)
        {
            var version = versions.NewestVersionInRange(range.Start.Span, range.End.Span);
            if (version > record.ReadVersion)
            {
                return new CommitValidation(CommitVerdict.Conflict, range.Start, version);
            }
        }

        return new CommitValidation(CommitVerdict.Valid, default, 0);
    }
}
