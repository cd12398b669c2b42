namespace Kdb.Raft.Tests.Linearizability;

/// <summary>One client operation on one key. <see cref="Return"/> is <see cref="long.MaxValue"/> when the outcome is unknown
/// (the write may or may not have taken effect).</summary>
internal sealed record KvOperation(int ClientId, int Key, KvOpKind Kind, int Value, int Expected, int Output, long Call, long Return)
{
    public bool OutcomeUnknown => Return == long.MaxValue;
}

internal enum KvOpKind : byte
{
    Get = 1,
    Put = 2,
    Cas = 3,
}

/// <summary>The sequential specification of one register: state is the value (0 = absent).</summary>
internal static class KvModel
{
    /// <summary>Applies <paramref name="op"/> to <paramref name="state"/>; false if the recorded output is impossible there.</summary>
    public static bool Step(int state, KvOperation op, out int next)
    {
        switch (op.Kind)
        {
            case KvOpKind.Get:
                next = state;
                return op.Output == state;
            case KvOpKind.Put:
                next = op.Value;
                return true;
            default:
                var success = state == op.Expected;
                next = success ? op.Value : state;
                if (op.OutcomeUnknown)
                {
                    return true;
                }
                return (op.Output == 1) == success;
        }
    }
}
