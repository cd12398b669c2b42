using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Raft.Tests.Linearizability;
using Kdb.Testing.EndToEnd;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// Single-key reads, writes and compare-and-swaps on a few rows of <c>kv</c> through the proxy, each recorded with its
/// invoke and completion time on one monotonic clock, for the WGL checker. A write whose answer never came (the
/// connection broke, or an error that does not say the statement was rolled back) is recorded with an unknown outcome:
/// it may have taken effect at any time after its invoke. Reads that fail are dropped (they change nothing).
/// </summary>
internal sealed class RegisterWorkload(string connectionString, string databaseId, int firstKey)
{
    public const int Keys = 3;
    public const string Table = "kv";

    private readonly ConcurrentQueue<KvOperation> _history = new();
    private readonly ConcurrentQueue<string> _unexpected = new();
    private int _unknown;
    private int _swapped;
    private int _readsOfWrites;

    public string DatabaseId => databaseId;

    public int Operations => _history.Count;

    public int UnknownOutcomes => _unknown;

    /// <summary>Compare-and-swaps that swapped and reads that returned a written value: the history has something to check.</summary>
    public (int Swapped, int ReadsOfWrites) Exercised => (_swapped, _readsOfWrites);

    /// <summary>Errors other than the reconnect-type ones a fault legitimately causes (SQLSTATE and message).</summary>
    public IReadOnlyCollection<string> UnexpectedErrors => _unexpected;

    /// <summary>Creates the table and this run's keys at 0, the model's initial state (each run takes keys of its own).</summary>
    public Task SetUpAsync() => BankWorkload.RetryAsync(async () =>
    {
        await using var conn = await Npg.OpenAsync(connectionString);
        await Npg.ExecAsync(conn, "CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v int NOT NULL)");
        await Npg.ExecAsync(conn, $"INSERT INTO kv SELECT g, 0 FROM generate_series({firstKey}, {firstKey + Keys - 1}) g ON CONFLICT DO NOTHING");
    });

    public Task RunAsync(int clients, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c, stop), CancellationToken.None)));

    /// <summary>Checks the whole history, key by key.</summary>
    public LinearizabilityChecker.Result Check() => LinearizabilityChecker.Check([.. _history]);

    private async Task ClientAsync(int client, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(databaseId, firstKey, client));
        // The last value this client saw per key: what its compare-and-swaps expect, so that some succeed.
        var seen = new int[Keys];
        var sequence = 0;
        NpgsqlConnection? conn = null;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    conn ??= await Npg.OpenAsync(connectionString);
                }
                catch (Exception e) when (BankWorkload.IsTransient(e))
                {
                    await Task.Delay(100, CancellationToken.None);
                    continue;
                }

                var key = random.Next(Keys);
                var roll = random.Next(10);
                var kind = roll < 4 ? KvOpKind.Get : roll < 7 ? KvOpKind.Put : KvOpKind.Cas;
                // Unique values: a read that returns one names the write it saw, which keeps the search short.
                var value = ((client + 1) * 1_000_000) + ++sequence;
                var expected = seen[key];
                var call = Stopwatch.GetTimestamp();
                try
                {
                    var output = await ExecuteAsync(conn, kind, firstKey + key, value, expected);
                    _history.Enqueue(new KvOperation(client, key, kind, value, expected, output, call, Stopwatch.GetTimestamp()));
                    if (kind == KvOpKind.Cas && output == 1)
                    {
                        Interlocked.Increment(ref _swapped);
                    }
                    else if (kind == KvOpKind.Get && output != 0)
                    {
                        Interlocked.Increment(ref _readsOfWrites);
                    }
                    seen[key] = kind switch
                    {
                        KvOpKind.Get => output,
                        KvOpKind.Put => value,
                        _ => output == 1 ? value : seen[key],
                    };
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException)
                {
                    if (!BankWorkload.IsTransient(e))
                    {
                        _unexpected.Enqueue(e is PostgresException p ? $"{p.SqlState}: {p.MessageText}" : e.Message);
                    }
                    // A serialization failure or deadlock says the statement was rolled back; anything else leaves a write in doubt.
                    if (kind != KvOpKind.Get && e is not PostgresException { SqlState: "40001" or "40P01" })
                    {
                        Interlocked.Increment(ref _unknown);
                        _history.Enqueue(new KvOperation(client, key, kind, value, expected, 0, call, long.MaxValue));
                    }
                    await conn.DisposeAsync();
                    conn = null;
                    await Task.Delay(100, CancellationToken.None);
                }
            }
        }
        finally
        {
            if (conn is not null)
            {
                await conn.DisposeAsync();
            }
        }
    }

    /// <summary>Runs one operation; returns the value read, or for a compare-and-swap 1 when it swapped and 0 when not.</summary>
    private static async Task<int> ExecuteAsync(NpgsqlConnection conn, KvOpKind kind, int key, int value, int expected)
    {
        switch (kind)
        {
            case KvOpKind.Get:
                await using (var get = new NpgsqlCommand("SELECT v FROM kv WHERE k = $1", conn) { Parameters = { new() { Value = key } } })
                {
                    return (int)(await get.ExecuteScalarAsync())!;
                }
            case KvOpKind.Put:
                await using (var put = new NpgsqlCommand("UPDATE kv SET v = $1 WHERE k = $2", conn) { Parameters = { new() { Value = value }, new() { Value = key } } })
                {
                    var rows = await put.ExecuteNonQueryAsync();
                    return rows == 1 ? 0 : throw new InvalidOperationException($"UPDATE of key {key} touched {rows} rows");
                }
            default:
                await using (var cas = new NpgsqlCommand("UPDATE kv SET v = $1 WHERE k = $2 AND v = $3", conn) { Parameters = { new() { Value = value }, new() { Value = key }, new() { Value = expected } } })
                {
                    return await cas.ExecuteNonQueryAsync();
                }
        }
    }
}
