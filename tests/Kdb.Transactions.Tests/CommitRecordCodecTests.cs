namespace Kdb.Transactions.Tests;

public sealed class CommitRecordCodecTests
{
    [Fact]
    public void Encode_Decode_RoundTripsRandomRecords()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var record = Keys.RandomRecord(random, tenant: (ulong)random.NextInt64(1, long.MaxValue));

            var encoded = CommitRecordCodec.Encode(record);
            var decoded = CommitRecordCodec.Decode(encoded);

            Assert.True(encoded.Length == CommitRecordCodec.GetEncodedLength(record), $"seed {seed}");
            AssertSame(record, decoded, seed);
        }
    }

    [Fact]
    public void Decode_EveryTruncation_IsAFormatError()
    {
        var record = Keys.RandomRecord(new Random(7), tenant: 42);
        var encoded = CommitRecordCodec.Encode(record);

        for (var length = 0; length < encoded.Length; length++)
        {
            Assert.Throws<CommitRecordFormatException>(() => CommitRecordCodec.Decode(encoded.AsMemory(0, length)));
        }
    }

    [Fact]
    public void Decode_AnySingleBitFlip_IsDetected()
    {
        var encoded = CommitRecordCodec.Encode(Keys.RandomRecord(new Random(11), tenant: 9));

        for (var bit = 0; bit < encoded.Length * 8; bit++)
        {
            var copy = (byte[])encoded.Clone();
            copy[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Throws<CommitRecordFormatException>(() => CommitRecordCodec.Decode(copy));
        }
    }

    [Fact]
    public void Decode_RandomBytes_NeverThrowsAnythingButFormatErrors()
    {
        var random = new Random(1234);
        for (var i = 0; i < 5000; i++)
        {
            var junk = Keys.RandomBytes(random, random.Next(0, 200));
            if (i % 2 == 0 && junk.Length >= 8)
            {
                // Half of them start like a record, to reach past the magic check.
                BitConverter.TryWriteBytes(junk, CommitRecordCodec.Magic);
                junk[4] = CommitRecordCodec.FormatVersion;
            }

            Assert.Throws<CommitRecordFormatException>(() => CommitRecordCodec.Decode(junk));
        }
    }

    [Fact]
    public void Decode_ForgedHugeCountWithValidChecksum_IsRejectedWithoutAllocating()
    {
        var record = new CommitRecord(5, 1, [Keys.Make(5, 1, 1)], [], []);
        var encoded = CommitRecordCodec.Encode(record);
        // Rewrite the point-read count to the largest 5-byte varint and fix up the checksum.
        var forged = new byte[encoded.Length + 4];
        encoded.AsSpan(0, 24).CopyTo(forged);
        forged[24] = 0xFF; forged[25] = 0xFF; forged[26] = 0xFF; forged[27] = 0xFF; forged[28] = 0x07;
        encoded.AsSpan(25, encoded.Length - 25 - 4).CopyTo(forged.AsSpan(29));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(forged.AsSpan(forged.Length - 4), Crc(forged.AsSpan(0, forged.Length - 4)));

        var ex = Assert.Throws<CommitRecordFormatException>(() => CommitRecordCodec.Decode(forged));
        Assert.Contains("exceeds the bytes that remain", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encode_KeyOfAnotherTenant_IsRefused()
    {
        var record = new CommitRecord(5, 1, [], [], [TxWrite.Put(Keys.Make(6, 1, 1), new byte[] { 1 })]);

        var ex = Assert.Throws<ArgumentException>(() => CommitRecordCodec.Encode(record));
        Assert.Contains("outside tenant 5", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encode_RangeDeleteOfTheWholeTenant_IsAllowedButNotBeyond()
    {
        var whole = new CommitRecord(5, 1, [], [], [TxWrite.DeleteRange(Keys.Make(5, 0), Keys.Make(6, 0))]);
        var beyond = new CommitRecord(5, 1, [], [], [TxWrite.DeleteRange(Keys.Make(5, 0), Keys.Make(6, 0, 1))]);

        CommitRecordCodec.Decode(CommitRecordCodec.Encode(whole));
        Assert.Throws<ArgumentException>(() => CommitRecordCodec.Encode(beyond));
    }

    [Fact]
    public void GetEncodedLength_OverTheRaftEntryLimit_AsksForStaging()
    {
        var big = new byte[CommitLimits.MaxValueBytes];
        var writes = Enumerable.Range(0, 3).Select(i => TxWrite.Put(Keys.Make(1, 1, (byte)i), big)).ToArray();

        Assert.Throws<CommitRecordTooLargeException>(() => CommitRecordCodec.GetEncodedLength(new CommitRecord(1, 1, [], [], writes)));
    }

    [Fact]
    public void Encode_OversizedKeyOrValue_IsRefused()
    {
        var longKey = Keys.Make(1, 1, new byte[CommitLimits.MaxKeyBytes]);
        Assert.Throws<ArgumentException>(() => CommitRecordCodec.Encode(new CommitRecord(1, 1, [longKey], [], [])));
        var bigValue = new byte[CommitLimits.MaxValueBytes + 1];
        Assert.Throws<ArgumentException>(() => CommitRecordCodec.Encode(new CommitRecord(1, 1, [], [], [TxWrite.Put(Keys.Make(1, 1), bigValue)])));
    }

    [Fact]
    public void PersistedEnums_KeepTheirValues()
    {
        Assert.Equal(1, (byte)WriteKind.Put);
        Assert.Equal(2, (byte)WriteKind.Delete);
        Assert.Equal(3, (byte)WriteKind.DeleteRange);
        Assert.Equal(0, (byte)CommitVerdict.Valid);
        Assert.Equal(1, (byte)CommitVerdict.Conflict);
        Assert.Equal(2, (byte)CommitVerdict.SnapshotTooOld);
        Assert.Equal(3, (byte)CommitVerdict.ReadVersionFromTheFuture);
        Assert.Equal(0x5243444Bu, CommitRecordCodec.Magic);
    }

    private static uint Crc(ReadOnlySpan<byte> data) => Crc32C.Compute(data);

    private static void AssertSame(CommitRecord expected, CommitRecord actual, int seed)
    {
        Assert.True(expected.Tenant == actual.Tenant && expected.ReadVersion == actual.ReadVersion && expected.StagedTransactionId == actual.StagedTransactionId, $"seed {seed}");
        Assert.Equal(expected.PointReads.Select(k => k.ToArray()), actual.PointReads.Select(k => k.ToArray()));
        Assert.Equal(expected.RangeReads.Select(r => (r.Start.ToArray(), r.End.ToArray())), actual.RangeReads.Select(r => (r.Start.ToArray(), r.End.ToArray())));
        Assert.Equal(
            expected.Writes.Select(w => (w.Kind, w.Key.ToArray(), w.ValueOrEnd.ToArray())),
            actual.Writes.Select(w => (w.Kind, w.Key.ToArray(), w.ValueOrEnd.ToArray())));
    }
}
