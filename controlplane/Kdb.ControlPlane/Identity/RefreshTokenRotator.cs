using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.ControlPlane.Identity;

/// <summary>
/// Rotates refresh tokens: consumes a presented token (if current, unexpired, unrevoked and its user not locked
/// out) and inserts its successor in the same family, atomically. Rotations arriving together share one
/// prepared statement and round trip (a group commit): while one batch runs, the next collects, so a busy
/// endpoint pays a round trip per batch instead of per token, and an idle one still answers after one round trip.
/// Each token's row lock orders concurrent uses of it: of two presentations of one token, one rotates and the
/// other finds it consumed, which the caller treats as reuse.
/// </summary>
internal sealed class RefreshTokenRotator(NpgsqlDataSource dataSource, IOptions<TokenOptions> options, TimeProvider time) : IAsyncDisposable
{
    /// <summary>A batch bigger than this waits for the next round: the statement stays short.</summary>
    private const int MaxBatch = 256;

    private const string RotateSql = """
        WITH presented AS (
            SELECT * FROM unnest($1::text[], $2::text[]) AS p(hash, next)
        ), consumed AS (
            UPDATE refresh_tokens t SET "ConsumedAt" = $3
            FROM presented p, "AspNetUsers" u
            WHERE t."TokenHash" = p.hash AND t."ConsumedAt" IS NULL AND t."RevokedAt" IS NULL AND t."ExpiresAt" > $3
              AND u."Id" = t."UserId" AND NOT (u."LockoutEnabled" AND u."LockoutEnd" IS NOT NULL AND u."LockoutEnd" > $3)
            RETURNING t."TokenHash", p.next, t."UserId", t."ClientId", t."FamilyId", u."Email"
        ), issued AS (
            INSERT INTO refresh_tokens ("TokenHash", "FamilyId", "UserId", "ClientId", "CreatedAt", "ExpiresAt")
            SELECT next, "FamilyId", "UserId", "ClientId", $3, $4 FROM consumed
        )
        SELECT "TokenHash", "UserId", "ClientId", "Email" FROM consumed
        """;

    private readonly ConcurrentQueue<Pending> _queue = new();
    private int _draining;

    /// <summary>What a rotation reads back: whom the new access token is for.</summary>
    public sealed record Rotation(string UserId, string ClientId, string? Email);

    /// <summary>
    /// Rotates the token whose SHA-256 is <paramref name="hash"/> to the one whose SHA-256 is
    /// <paramref name="nextHash"/>; null when the presented token is not current (unknown, consumed, revoked,
    /// expired, or its user locked out).
    /// </summary>
    public Task<Rotation?> RotateAsync(string hash, string nextHash)
    {
        var pending = new Pending(hash, nextHash);
        _queue.Enqueue(pending);
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            _ = Task.Run(DrainAsync);
        }

        return pending.Result.Task;
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();

    private async Task DrainAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        while (true)
        {
            while (batch.Count < MaxBatch && _queue.TryDequeue(out var next))
            {
                batch.Add(next);
            }

            if (batch.Count == 0)
            {
                Volatile.Write(ref _draining, 0);
                // A rotation enqueued after the last TryDequeue but before the flag dropped found it set and
                // left the work to this loop: take it back if no other loop has.
                if (_queue.IsEmpty || Interlocked.CompareExchange(ref _draining, 1, 0) != 0)
                {
                    return;
                }

                continue;
            }

            await RunAsync(batch);
            batch.Clear();
        }
    }

    private async Task RunAsync(List<Pending> batch)
    {
        // One presentation per token per statement: a repeat inside the batch is a concurrent reuse, answered
        // "not current" once the first has consumed the token, exactly as a second statement would find it.
        var byHash = new Dictionary<string, Pending>(batch.Count, StringComparer.Ordinal);
        var repeats = new List<Pending>();
        foreach (var p in batch)
        {
            if (!byHash.TryAdd(p.Hash, p))
            {
                repeats.Add(p);
            }
        }

        var hashes = new string[byHash.Count];
        var nexts = new string[byHash.Count];
        var i = 0;
        foreach (var p in byHash.Values)
        {
            hashes[i] = p.Hash;
            nexts[i] = p.NextHash;
            i++;
        }

        try
        {
            var now = time.GetUtcNow();
            var rotated = await ExecuteAsync(hashes, nexts, now, now + options.Value.RefreshTokenLifetime);
            foreach (var (hash, p) in byHash)
            {
                p.Result.TrySetResult(rotated.GetValueOrDefault(hash));
            }

            foreach (var p in repeats)
            {
                p.Result.TrySetResult(null);
            }
        }
        catch (Exception ex)
        {
            foreach (var p in batch)
            {
                p.Result.TrySetException(ex);
            }
        }
    }

    private async Task<Dictionary<string, Rotation>> ExecuteAsync(string[] hashes, string[] nexts, DateTimeOffset now, DateTimeOffset expires)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                await using var command = new NpgsqlCommand(RotateSql, connection);
                command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = hashes });
                command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = nexts });
                command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = now });
                command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = expires });
                // Prepared once per physical connection; later batches on it skip parsing and planning.
                await command.PrepareAsync();
                var rotated = new Dictionary<string, Rotation>(hashes.Length, StringComparer.Ordinal);
                await using var reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    rotated[reader.GetString(0)] = new Rotation(reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));
                }

                return rotated;
            }
            catch (PostgresException ex) when (attempt < 3 && ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                // Two instances' batches locking shared tokens in different orders: the statement rolled back
                // whole, so running it again is safe.
            }
        }
    }

    private sealed class Pending(string hash, string nextHash)
    {
        public string Hash { get; } = hash;

        public string NextHash { get; } = nextHash;

        public TaskCompletionSource<Rotation?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
