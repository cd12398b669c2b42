using System.Collections.Concurrent;
using System.Globalization;
using Kdb.Sql.Sessions;
using Xunit.Abstractions;

namespace Kdb.Sql.Tests.Anomalies;

/// <summary>
/// The bank test: concurrent tasks, one session each, move random amounts between accounts in explicit
/// transactions, retrying on 40001. A transfer counts as acknowledged once its COMMIT returned. At the end the
/// total is unchanged, every account's balance equals its opening balance plus what the acknowledged log says
/// it received minus what it sent, and the transfers table holds exactly the acknowledged transfers.
/// </summary>
public sealed class BankTransferTests(ITestOutputHelper output) : IDisposable
{
    private const int Accounts = 8;
    private const int OpeningBalance = 1_000;

    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private sealed record Transfer(long Id, int From, int To, int Amount);

    [Fact]
    public async Task ConcurrentTransfers_WithRetryOn40001_TotalAndEveryBalanceMatchCommittedLog()
    {
        var soak = Environment.GetEnvironmentVariable("KDB_SOAK") == "1";
        var tasks = 4;
        var transfersPerTask = soak ? 1_500 : 150;
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))");
        await setup.RunAsync("CREATE TABLE transfers (id bigint PRIMARY KEY, src int NOT NULL REFERENCES accounts, dst int NOT NULL REFERENCES accounts, amount int NOT NULL)");
        await setup.RunAsync($"INSERT INTO accounts SELECT g, {OpeningBalance} FROM generate_series(1, {Accounts}) g");

        var acknowledged = new ConcurrentBag<Transfer>();
        var retries = 0;
        var declined = 0;
        var workers = Enumerable.Range(0, tasks).Select(worker => Task.Run(async () =>
        {
            var random = new Random(31 * worker + 7);
            using var session = _db.Session();
            for (var n = 0; n < transfersPerTask; n++)
            {
                var from = random.Next(1, Accounts + 1);
                var to = (from + random.Next(1, Accounts)) % Accounts + 1;
                var transfer = new Transfer((long)worker * 1_000_000 + n, from, to, random.Next(1, 300));
                for (var attempt = 0; ; attempt++)
                {
                    Assert.True(attempt < 10_000, $"transfer {transfer} never committed");
                    var outcome = await TryTransferAsync(session, transfer);
                    if (outcome == Outcome.Committed)
                    {
                        acknowledged.Add(transfer);
                        break;
                    }

                    if (outcome == Outcome.Declined)
                    {
                        Interlocked.Increment(ref declined);
                        break;
                    }

                    Interlocked.Increment(ref retries);
                    await Task.Yield();
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        var expected = new long[Accounts + 1];
        Array.Fill(expected, OpeningBalance);
        foreach (var t in acknowledged)
        {
            expected[t.From] -= t.Amount;
            expected[t.To] += t.Amount;
        }

        var balances = await setup.QueryAsync("SELECT id, balance FROM accounts ORDER BY id");
        Assert.Equal(Accounts, balances.Count);
        foreach (var row in balances)
        {
            var id = int.Parse(row[0], CultureInfo.InvariantCulture);
            Assert.True(expected[id] == long.Parse(row[1], CultureInfo.InvariantCulture), $"account {id}: balance {row[1]}, committed log says {expected[id]}");
        }

        Assert.Equal((Accounts * OpeningBalance).ToString(CultureInfo.InvariantCulture), await setup.ScalarAsync("SELECT sum(balance) FROM accounts"));
        var logged = await setup.QueryAsync("SELECT id, src, dst, amount FROM transfers ORDER BY id");
        var expectedLog = acknowledged.OrderBy(t => t.Id).Select(t => new[] { t.Id.ToString(CultureInfo.InvariantCulture), t.From.ToString(CultureInfo.InvariantCulture), t.To.ToString(CultureInfo.InvariantCulture), t.Amount.ToString(CultureInfo.InvariantCulture) }).ToList();
        Assert.Equal(expectedLog.Count, logged.Count);
        for (var i = 0; i < logged.Count; i++)
        {
            Assert.Equal(expectedLog[i], logged[i]);
        }

        Assert.Equal(tasks * transfersPerTask, acknowledged.Count + declined);
        output.WriteLine($"{acknowledged.Count} transfers committed, {declined} declined for want of funds, {retries} retries after 40001");
    }

    private enum Outcome
    {
        Committed,
        Declined,
        Retry,
    }

    /// <summary>One attempt. 40001 anywhere means retry; a short balance declines the transfer (rolled back).</summary>
    private static async Task<Outcome> TryTransferAsync(SqlSession session, Transfer t)
    {
        try
        {
            await session.ExecuteAsync("BEGIN");
            var balance = long.Parse(await session.ScalarAsync("SELECT balance FROM accounts WHERE id = $1", t.From), CultureInfo.InvariantCulture);

            // The engine answers synchronously: yielding between statements lets the other workers' transactions
            // interleave with this one, so conflicts (and the 40001 retry path) really happen.
            await Task.Yield();
            if (balance < t.Amount)
            {
                await session.ExecuteAsync("ROLLBACK");
                return Outcome.Declined;
            }

            await session.RunAsync("UPDATE accounts SET balance = balance - $1 WHERE id = $2", t.Amount, t.From);
            await Task.Yield();
            await session.RunAsync("UPDATE accounts SET balance = balance + $1 WHERE id = $2", t.Amount, t.To);
            await session.RunAsync("INSERT INTO transfers VALUES ($1, $2, $3, $4)", t.Id, t.From, t.To, t.Amount);
            await session.ExecuteAsync("COMMIT");
            return Outcome.Committed;
        }
        catch (SqlException e) when (e.SqlState is "40001" or "40P01")
        {
            if (session.Status != SqlTransactionStatus.Idle)
            {
                await session.ExecuteAsync("ROLLBACK");
            }

            return Outcome.Retry;
        }
    }
}
