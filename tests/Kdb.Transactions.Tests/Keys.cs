using System.Buffers.Binary;

namespace Kdb.Transactions.Tests;

internal static class Keys
{
    /// <summary>A DESIGN-shaped key: tenant (8 bytes BE), table (4), index (4), then a suffix.</summary>
    public static byte[] Make(ulong tenant, uint table, params byte[] suffix)
    {
        var key = new byte[16 + suffix.Length];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), table);
        suffix.CopyTo(key, 16);
        return key;
    }

    public static CommitRecord RandomRecord(Random random, ulong tenant)
    {
        byte[] Key() => Make(tenant, (uint)random.Next(1, 5), RandomBytes(random, random.Next(0, 40)));
        var points = Enumerable.Range(0, random.Next(0, 6)).Select(_ => (ReadOnlyMemory<byte>)Key()).ToArray();
        var ranges = Enumerable.Range(0, random.Next(0, 4)).Select(_ =>
        {
            var a = Key();
            var b = Key();
            return a.AsSpan().SequenceCompareTo(b) <= 0 ? new KeyRange(a, b) : new KeyRange(b, a);
        }).ToArray();
        var writes = Enumerable.Range(0, random.Next(0, 8)).Select(_ => random.Next(3) switch
        {
            0 => TxWrite.Put(Key(), RandomBytes(random, random.Next(0, 300))),
            1 => TxWrite.Delete(Key()),
            _ => TxWrite.DeleteRange(Make(tenant, 1), Make(tenant, 2)),
        }).ToArray();
        return new CommitRecord(tenant, (ulong)random.NextInt64(0, long.MaxValue), points, ranges, writes)
        {
            StagedTransactionId = random.Next(4) == 0 ? (ulong)random.NextInt64(1, long.MaxValue) : 0,
        };
    }

    public static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
