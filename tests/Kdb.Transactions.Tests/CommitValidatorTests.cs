namespace Kdb.Transactions.Tests;

public sealed class CommitValidatorTests
{
    private const ulong Tenant = 77;

    [Fact]
    public void Validate_NothingReadChanged_IsValid()
    {
        var store = new ModelVersionSource();
        store.Put(Keys.Make(Tenant, 1, 1), 5);
        var record = new CommitRecord(Tenant, 5, [Keys.Make(Tenant, 1, 1), Keys.Make(Tenant, 1, 9)], [new KeyRange(Keys.Make(Tenant, 1), Keys.Make(Tenant, 2))], []);

        var result = CommitValidator.Validate(record, store, commitVersion: 6, gcThreshold: 0);

        Assert.True(result.IsValid);
        Assert.Equal("00000", result.SqlState);
    }

    [Fact]
    public void Validate_PointReadWrittenLater_IsAConflictNamingTheKey()
    {
        var store = new ModelVersionSource();
        var key = Keys.Make(Tenant, 1, 1);
        store.Put(key, 8);

        var result = CommitValidator.Validate(new CommitRecord(Tenant, 5, [key], [], []), store, 9, 0);

        Assert.Equal(CommitVerdict.Conflict, result.Verdict);
        Assert.Equal("40001", result.SqlState);
        Assert.Equal(key, result.ConflictKey.ToArray());
        Assert.Equal(8ul, result.ConflictVersion);
    }

    [Fact]
    public void Validate_KeyDeletedLater_TombstoneIsAConflict()
    {
        var store = new ModelVersionSource();
        var key = Keys.Make(Tenant, 1, 1);
        store.Put(key, 3);
        store.Put(key, 7); // a delete leaves a tombstone at its version

        Assert.Equal(CommitVerdict.Conflict, CommitValidator.Validate(new CommitRecord(Tenant, 5, [key], [], []), store, 8, 0).Verdict);
    }

    [Fact]
    public void Validate_PhantomInsertedIntoAReadRange_IsAConflict()
    {
        var store = new ModelVersionSource();
        store.Put(Keys.Make(Tenant, 1, 50), 6);
        var range = new KeyRange(Keys.Make(Tenant, 1, 10), Keys.Make(Tenant, 1, 60));

        Assert.Equal(CommitVerdict.Conflict, CommitValidator.Validate(new CommitRecord(Tenant, 5, [], [range], []), store, 7, 0).Verdict);
    }

    [Fact]
    public void Validate_WriteJustOutsideTheReadRange_IsValid()
    {
        var store = new ModelVersionSource();
        store.Put(Keys.Make(Tenant, 1, 60), 6); // the range end is exclusive
        var range = new KeyRange(Keys.Make(Tenant, 1, 10), Keys.Make(Tenant, 1, 60));

        Assert.True(CommitValidator.Validate(new CommitRecord(Tenant, 5, [], [range], []), store, 7, 0).IsValid);
    }

    [Fact]
    public void Validate_RangeTombstoneOverAPointRead_IsAConflict()
    {
        var store = new ModelVersionSource();
        store.DeleteRange(Keys.Make(Tenant, 1), Keys.Make(Tenant, 2), 9); // DROP TABLE

        Assert.Equal(CommitVerdict.Conflict, CommitValidator.Validate(new CommitRecord(Tenant, 5, [Keys.Make(Tenant, 1, 3)], [], []), store, 10, 0).Verdict);
    }

    [Fact]
    public void Validate_ReadVersionBelowGcThreshold_IsSnapshotTooOld()
    {
        var result = CommitValidator.Validate(new CommitRecord(Tenant, 5, [], [], []), new ModelVersionSource(), 100, gcThreshold: 6);

        Assert.Equal(CommitVerdict.SnapshotTooOld, result.Verdict);
        Assert.Equal("40001", result.SqlState);
        Assert.Contains("snapshot too old", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ReadVersionAtGcThreshold_IsStillChecked()
    {
        Assert.True(CommitValidator.Validate(new CommitRecord(Tenant, 6, [], [], []), new ModelVersionSource(), 100, gcThreshold: 6).IsValid);
    }

    [Fact]
    public void Validate_ReadVersionNotBeforeCommit_IsRefused()
    {
        Assert.Equal(CommitVerdict.ReadVersionFromTheFuture, CommitValidator.Validate(new CommitRecord(Tenant, 10, [], [], []), new ModelVersionSource(), 10, 0).Verdict);
    }

    [Fact]
    public void Validate_NeverWrittenKey_ValidatesAsVersionZero()
    {
        Assert.True(CommitValidator.Validate(new CommitRecord(Tenant, 0, [Keys.Make(Tenant, 3, 3)], [], []), new ModelVersionSource(), 1, 0).IsValid);
    }

    [Fact]
    public void Validate_RandomHistories_AgreeWithABruteForceDefinition()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var store = new ModelVersionSource();
            var writes = new List<(byte[] Key, ulong Version)>();
            for (ulong v = 1; v <= 30; v++)
            {
                var key = Keys.Make(Tenant, 1, (byte)random.Next(0, 20));
                store.Put(key, v);
                writes.Add((key, v));
            }

            var readVersion = (ulong)random.Next(0, 30);
            var points = Enumerable.Range(0, random.Next(0, 4)).Select(_ => (ReadOnlyMemory<byte>)Keys.Make(Tenant, 1, (byte)random.Next(0, 20))).ToArray();
            var lo = (byte)random.Next(0, 20);
            var hi = (byte)random.Next(lo, 21);
            var ranges = random.Next(2) == 0 ? [] : new[] { new KeyRange(Keys.Make(Tenant, 1, lo), Keys.Make(Tenant, 1, hi)) };

            var expectConflict = writes.Any(w => w.Version > readVersion &&
                (points.Any(p => p.Span.SequenceEqual(w.Key)) ||
                 ranges.Any(r => w.Key.AsSpan().SequenceCompareTo(r.Start.Span) >= 0 && w.Key.AsSpan().SequenceCompareTo(r.End.Span) < 0)));

            var verdict = CommitValidator.Validate(new CommitRecord(Tenant, readVersion, points, ranges, []), store, 31, 0).Verdict;
            Assert.True((verdict == CommitVerdict.Conflict) == expectConflict, $"seed {seed}: verdict {verdict}, expected conflict {expectConflict}");
        }
    }

    /// <summary>The versions a storage engine reports, kept naively: each point write and each range tombstone.</summary>
    private sealed class ModelVersionSource : IVersionSource
    {
        private readonly List<(byte[] Key, ulong Version)> _points = [];
        private readonly List<(byte[] Start, byte[] End, ulong Version)> _ranges = [];

        public void Put(byte[] key, ulong version) => _points.Add((key, version));

        public void DeleteRange(byte[] start, byte[] end, ulong version) => _ranges.Add((start, end, version));

        public ulong NewestVersion(ReadOnlySpan<byte> key)
        {
            ulong newest = 0;
            foreach (var (k, v) in _points)
            {
                if (key.SequenceEqual(k))
                {
                    newest = Math.Max(newest, v);
                }
            }

            foreach (var (s, e, v) in _ranges)
            {
                if (key.SequenceCompareTo(s) >= 0 && key.SequenceCompareTo(e) < 0)
                {
                    newest = Math.Max(newest, v);
                }
            }

            return newest;
        }

        public ulong NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
        {
            ulong newest = 0;
            foreach (var (k, v) in _points)
            {
                if (k.AsSpan().SequenceCompareTo(start) >= 0 && k.AsSpan().SequenceCompareTo(end) < 0)
                {
                    newest = Math.Max(newest, v);
                }
            }

            foreach (var (s, e, v) in _ranges)
            {
                if (s.AsSpan().SequenceCompareTo(end) < 0 && start.SequenceCompareTo(e) < 0)
                {
                    newest = Math.Max(newest, v);
                }
            }

            return newest;
        }
    }
}
