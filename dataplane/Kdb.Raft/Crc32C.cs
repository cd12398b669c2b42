using System.Buffers.Binary;
using System.Numerics;

namespace Kdb.Raft;

/// <summary>CRC32C (hardware instructions where available), one-shot or fed chunk by chunk.</summary>
public static class Crc32C
{
    /// <summary>The state before any byte; finish with <see cref="Finish"/>.</summary>
    public const uint Initial = 0xFFFFFFFFu;

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(Initial, data));

    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        var i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }
        for (; i < data.Length; i++)
        {
            state = BitOperations.Crc32C(state, data[i]);
        }
        return state;
    }

    public static uint Finish(uint state) => ~state;
}
