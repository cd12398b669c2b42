using System.Collections.Concurrent;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.Testing.EndToEnd;

/// <summary>
/// The bank invariant as a client of one database meets it: transfers between accounts, each a transaction that moves
/// money and writes a ledger row with a client-chosen id. A transfer whose COMMIT answered is acknowledged and must
/// survive any fault; one whose COMMIT never answered is ambiguous and may or may not be there, but never in part.
/// Clients reconnect and retry on the errors a restart or failover legitimately causes; anything else is recorded.
/// </summary>
public sealed class BankWorkload(string connectionString, string databaseId)
{
    public const int Accounts = 8;
    public const long InitialBalance = 1000;
    public static readonly string[] Tables = ["accounts", "transfers", "tenant_mark"];

    private readonly ConcurrentDictionary<string, byte> _acknowledged = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _unexpected = new();
    private int _ambiguous;
    private int _retries;

    public string DatabaseId => databaseId;

    public int Acknowledged => _acknowledged.Count;

    public int Ambiguous => _ambiguous;

    /// <summary>Transient errors that made a client reconnect or retry (08xxx, 57P0x, 40001, I/O).</summary>
    public int Retries => _retries;

    /// <summary>Errors a client must not see from a healthy service under faults (SQLSTATE and message).</summary>
    public IReadOnlyCollection<string> UnexpectedErrors => _unexpected;

    public async Task SetUpAsync()
    {
        await RetryAsync(async () =>
        {
            await using var conn = await OpenAsync();
            await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, balance bigint NOT NULL)");
            await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS transfers (id text PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL)");
            await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS tenant_mark (db text PRIMARY KEY)");
            await ExecAsync(conn, $"INSERT INTO accounts SELECT g, {InitialBalance} FROM generate_series(1, {Accounts}) g ON CONFLICT DO NOTHING");
            await using var mark = new NpgsqlCommand("INSERT INTO tenant_mark VALUES ($1) ON CONFLICT DO NOTHING", conn) { Parameters = { new() { Value = databaseId } } };
            await mark.ExecuteNonQueryAsync();
        });
    }

    /// <summary>
    /// Transfers until <paramref name="stop"/> fires, with <paramref name="clients"/> concurrent sessions. Each client
    /// keeps its session and opens a new one after a transient error. Ends within a command timeout of the stop.
    /// </summary>
    public Task RunAsync(int clients, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c, stop), CancellationToken.None)));

    private async Task ClientAsync(int client, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(databaseId, client));
        NpgsqlConnection? conn = null;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    conn ??= await OpenAsync();
                    await TransferAsync(conn, random);
                }
                catch (Exception e) when (IsTransient(e))
                {
                    Interlocked.Increment(ref _retries);
                    if (conn is not null)
                    {
                        await conn.DisposeAsync();
                        conn = null;
                    }
                    await Task.Delay(100, CancellationToken.None);
                }
                catch (PostgresException e)
                {
                    _unexpected.Enqueue($"{e.SqlState}: {e.MessageText}");
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

    private async Task TransferAsync(NpgsqlConnection conn, Random random)
    {
        var src = random.Next(1, Accounts + 1);
        var dst = src % Accounts + 1;
        var amount = random.Next(1, 20);
        var id = Guid.NewGuid().ToString("N");
        await using var tx = await conn.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand("UPDATE accounts SET balance = balance - $1 WHERE id = $2", conn, tx) { Parameters = { new() { Value = (long)amount }, new() { Value = src } } })
        {
            await cmd.ExecuteNonQueryAsync();
        }
        await using (var cmd = new NpgsqlCommand("UPDATE accounts SET balance = balance + $1 WHERE id = $2", conn, tx) { Parameters = { new() { Value = (long)amount }, new() { Value = dst } } })
        {
            await cmd.ExecuteNonQueryAsync();
        }
        await using (var cmd = new NpgsqlCommand("INSERT INTO transfers VALUES ($1, $2, $3, $4)", conn, tx) { Parameters = { new() { Value = id }, new() { Value = src }, new() { Value = dst }, new() { Value = (long)amount } } })
        {
            await cmd.ExecuteNonQueryAsync();
        }
        try
        {
            await tx.CommitAsync();
        }
        catch (PostgresException e) when (e.SqlState == "40001")
        {
            // A serialization failure at COMMIT is a definite abort: nothing to remember.
            throw;
        }
        catch (Exception)
        {
            // The answer to COMMIT was lost: the transfer may or may not have happened.
            Interlocked.Increment(ref _ambiguous);
            throw;
        }
        _acknowledged.TryAdd(id, 0);
    }

    /// <summary>
    /// Reads the database back (retrying while the service recovers) and lists every broken promise: an acknowledged
    /// transfer missing from the ledger, a total that is not the initial one, an account whose balance disagrees with
    /// the ledger (a transfer applied in part).
    /// </summary>
    public async Task<BankCheck> VerifyAsync()
    {
        BankCheck? check = null;
        await RetryAsync(async () =>
        {
            await using var conn = await OpenAsync();
            var balances = new Dictionary<int, long>();
            await using (var cmd = new NpgsqlCommand("SELECT id, balance FROM accounts", conn))
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    balances[reader.GetInt32(0)] = reader.GetInt64(1);
                }
            }
            var expected = Enumerable.Range(1, Accounts).ToDictionary(a => a, _ => InitialBalance);
            var ledger = new HashSet<string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("SELECT id, src, dst, amount FROM transfers", conn))
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    ledger.Add(reader.GetString(0));
                    expected[reader.GetInt32(1)] -= reader.GetInt64(3);
                    expected[reader.GetInt32(2)] += reader.GetInt64(3);
                }
            }
            var problems = new List<string>();
            var lost = _acknowledged.Keys.Count(id => !ledger.Contains(id));
            if (lost > 0)
            {
                problems.Add($"{lost} acknowledged transfers missing");
            }
            var total = balances.Values.Sum();
            if (total != Accounts * InitialBalance || balances.Count != Accounts)
            {
                problems.Add($"{balances.Count} accounts hold {total}, expected {Accounts} holding {Accounts * InitialBalance}");
            }
            foreach (var (account, balance) in expected)
            {
                if (balances.GetValueOrDefault(account) != balance)
                {
                    problems.Add($"account {account}: balance {balances.GetValueOrDefault(account)}, ledger says {balance}");
                }
            }
            check = new BankCheck(databaseId, Acknowledged, ledger.Count, lost, problems);
        });
        return check!;
    }

    /// <summary>Errors a restart, failover or proxy restart legitimately causes: the client reconnects and retries.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState is "57P01" or "57P02" or "57P03" or "40001" or "40P01",
        NpgsqlException => true,
        TimeoutException or IOException or System.Net.Sockets.SocketException => true,
        _ => false,
    };

    /// <summary>Runs <paramref name="action"/> until it gets through transient errors (up to two minutes).</summary>
    public static async Task RetryAsync(Func<Task> action, int seconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                await action();
                return;
            }
            catch (Exception e) when (IsTransient(e) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
        }
    }

    private Task<NpgsqlConnection> OpenAsync() => Npg.OpenAsync(connectionString);

    internal static Task ExecAsync(NpgsqlConnection conn, string sql) => Npg.ExecAsync(conn, sql);
}

/// <summary>What <see cref="BankWorkload.VerifyAsync"/> found; <see cref="Problems"/> is empty when every promise held.</summary>
public sealed record BankCheck(string DatabaseId, int Acknowledged, int LedgerRows, int LostWrites, IReadOnlyList<string> Problems)
{
    public override string ToString() => $"{DatabaseId}: {Acknowledged} acknowledged, {LedgerRows} in ledger; {(Problems.Count == 0 ? "ok" : string.Join("; ", Problems))}";
}
