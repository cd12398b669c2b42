using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>Sequence values, outside any transaction (PostgreSQL's sequences are not transactional either).</summary>
internal interface ISequenceAccess
{
    long NextValue(uint sequenceId);

    long CurrentValue(uint sequenceId);

    void SetValue(uint sequenceId, long value, bool called);
}

/// <summary>Everything a running statement needs: its transaction, parameters, outer rows of correlated subqueries and limits.</summary>
internal sealed class ExecContext
{
    // Created on first use: only correlated subqueries push outer rows.
    private List<Value[]>? _outerRows;
    private List<Operator>? _closeAtEnd;
    private static long s_executions;
    private long _memoryUsed;
    private int _checkCounter;

    /// <summary>
    /// Identifies this statement execution: cached plans keep per-execution state (materialized CTEs, uncorrelated
    /// subquery results) keyed by it, and a reused context gets a new one for each statement.
    /// </summary>
    public long Execution { get; private set; } = Interlocked.Increment(ref s_executions);

    // Settable (not init) so that a session can reuse one context for the statements of its point-select path.
    public required SqlTransaction Transaction { get; set; }

    /// <summary>The transaction's epoch when this statement started: a cursor outliving its transaction fails cleanly.</summary>
    public int TransactionEpoch { get; set; }

    public required Sessions.SessionState Session { get; init; }

    public required CatalogData Catalog { get; set; }

    public required ISequenceAccess Sequences { get; init; }

    public Value[] Parameters { get; set; } = [];

    public CancellationToken CancellationToken { get; set; }

    /// <summary>now(): the transaction's start, fixed for the transaction as in PostgreSQL.</summary>
    public long TransactionTimestamp { get; set; }

    /// <summary>statement_timestamp().</summary>
    public long StatementTimestamp { get; set; }

    /// <summary>Bytes a statement may hold in sorts, hashes and materializations (work_mem analogue): over it is 53200.</summary>
    public long MemoryLimit { get; set; } = 256L << 20;

    /// <summary>Scratch buffer for keys; the session lends the same one to each statement.</summary>
    public required ByteWriter KeyWriter { get; init; }

    /// <summary>Scratch buffer for encoded rows.</summary>
    public required ByteWriter RowWriter { get; init; }

    public Value[] OuterRow(int depth) => _outerRows![^depth];

    public void PushOuter(Value[] row) => (_outerRows ??= []).Add(row);

    public void PopOuter() => _outerRows!.RemoveAt(_outerRows.Count - 1);

    /// <summary>Closes <paramref name="op"/> when the statement ends (a shared node no single reader may close).</summary>
    public void CloseAtEnd(Operator op) => (_closeAtEnd ??= []).Add(op);

    /// <summary>Closes what <see cref="CloseAtEnd"/> registered (the cursor calls it after closing the plan).</summary>
    public void CloseRegistered()
    {
        if (_closeAtEnd is { Count: > 0 } ops)
        {
            foreach (var op in ops)
            {
                op.Close(this);
            }

            ops.Clear();
        }
    }

    /// <summary>Clears per-statement state before the context is reused for another statement.</summary>
    public void ResetStatement()
    {
        _closeAtEnd?.Clear();
        _outerRows?.Clear();
        Execution = Interlocked.Increment(ref s_executions);
        _memoryUsed = 0;
        _checkCounter = 0;
    }

    /// <summary>Charges buffered memory; throws 53200 when the statement exceeds its limit.</summary>
    public void ChargeMemory(long bytes)
    {
        _memoryUsed += bytes;
        if (_memoryUsed > MemoryLimit)
        {
            throw new SqlException(SqlState.OutOfMemory, "out of memory", detail: $"The statement needed more than {MemoryLimit >> 20} MB of working memory (sorts, hashes, materialized results).");
        }
    }

    /// <summary>Cheap periodic cancellation check for row loops.</summary>
    public void CheckCancellation()
    {
        if ((++_checkCounter & 1023) == 0)
        {
            CancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Approximate memory of a buffered row.</summary>
    public static long RowBytes(Value[] row)
    {
        long bytes = 32 + (row.Length * 24);
        foreach (var v in row)
        {
            bytes += v.Kind switch
            {
                ValueKind.Text => 24 + (v.AsText.Length * 2),
                ValueKind.Bytes => 24 + v.AsBytes.Length,
                ValueKind.Numeric or ValueKind.Uuid or ValueKind.Interval => 24,
                ValueKind.Array => 32 + (v.AsArray.Length * 24),
                _ => 0,
            };
        }

        return bytes;
    }
}
