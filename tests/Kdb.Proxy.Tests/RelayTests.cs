using Kdb.Testing.Proxy;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>
/// The relay between client and node: values far larger than its per-session buffers and batches of many small
/// messages (headers cut across receives) arrive intact both ways, in plaintext and over TLS.
/// </summary>
[Collection(ProxyCollection.Name)]
public sealed class RelayTests(ProxyTestBed bed)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LargeValuesAndBatches_CrossTheRelayIntact(bool tls)
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-relay-1");
        var cs = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-relay-1");
        if (tls)
        {
            cs = cs.Replace("SSL Mode=Disable", "SSL Mode=VerifyCA;Root Certificate=" + bed.CertificatePath, StringComparison.Ordinal);
        }

        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        var table = tls ? "relay_tls" : "relay_plain";
        await using (var create = new NpgsqlCommand($"CREATE TABLE {table} (id int PRIMARY KEY, v text)", conn))
        {
            await create.ExecuteNonQueryAsync();
        }

        // 300 KB up and back: many receives each way, the message header of what follows landing anywhere in one.
        var random = new Random(42);
        var large = new string(Enumerable.Range(0, 300_000).Select(_ => (char)('a' + random.Next(26))).ToArray());
        await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1, $1)", conn))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = large });
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        await using (var select = new NpgsqlCommand($"SELECT v FROM {table} WHERE id = 1", conn))
        {
            Assert.Equal(large, await select.ExecuteScalarAsync());
        }

        // 300 statements in one write: message boundaries fall at every offset of the relay's buffers.
        await using (var batch = new NpgsqlBatch(conn))
        {
            for (var i = 2; i < 302; i++)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"INSERT INTO {table} VALUES ({i}, '{new string('x', i % 37)}')"));
            }

            await batch.ExecuteNonQueryAsync();
        }

        await using (var check = new NpgsqlCommand($"SELECT count(*), sum(length(v)) FROM {table} WHERE id > 1", conn))
        await using (var reader = await check.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(300L, reader.GetInt64(0));
            Assert.Equal(Enumerable.Range(2, 300).Sum(i => (long)(i % 37)), Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
