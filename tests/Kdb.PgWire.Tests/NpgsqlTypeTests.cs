using Kdb.PgWire.Tests.Support;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.PgWire.Tests;

/// <summary>
/// Every supported type through Npgsql 10: parameters go out in binary, results come back in binary
/// (Npgsql's default) or in text (AllResultTypesAreUnknown), and text parameters are parsed by the server.
/// Npgsql runs with Server Compatibility Mode=NoTypeLoading: the test session has no pg_type catalog.
/// </summary>
public sealed class NpgsqlTypeTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new TestServer();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>(value, Npgsql type, PostgreSQL 15 text output with DateStyle ISO and TimeZone UTC).</summary>
    internal static readonly (object Value, NpgsqlDbType Type, string Text)[] Samples =
    [
        (true, NpgsqlDbType.Boolean, "t"),
        (false, NpgsqlDbType.Boolean, "f"),
        ((short)-32768, NpgsqlDbType.Smallint, "-32768"),
        (int.MaxValue, NpgsqlDbType.Integer, "2147483647"),
        (long.MinValue, NpgsqlDbType.Bigint, "-9223372036854775808"),
        (1.5f, NpgsqlDbType.Real, "1.5"),
        (3.4028235e38f, NpgsqlDbType.Real, "3.4028235e+38"),
        (Math.PI, NpgsqlDbType.Double, "3.141592653589793"),
        (1e-7, NpgsqlDbType.Double, "1e-07"),
        (double.NegativeInfinity, NpgsqlDbType.Double, "-Infinity"),
        (double.NaN, NpgsqlDbType.Double, "NaN"),
        (12345.6789m, NpgsqlDbType.Numeric, "12345.6789"),
        (-0.000123m, NpgsqlDbType.Numeric, "-0.000123"),
        (1.50m, NpgsqlDbType.Numeric, "1.50"),
        (0.00m, NpgsqlDbType.Numeric, "0.00"),
        (10000m, NpgsqlDbType.Numeric, "10000"),
        (79228162514264337593543950335m, NpgsqlDbType.Numeric, "79228162514264337593543950335"),
        (-1234567890.0123456789012m, NpgsqlDbType.Numeric, "-1234567890.0123456789012"),
        ("héllo wörld ✓", NpgsqlDbType.Text, "héllo wörld ✓"),
        (string.Empty, NpgsqlDbType.Text, string.Empty),
        ("varchar value", NpgsqlDbType.Varchar, "varchar value"),
        ("ab ", NpgsqlDbType.Char, "ab "),
        (new byte[] { 0, 1, 2, 255 }, NpgsqlDbType.Bytea, "\\x000102ff"),
        (Array.Empty<byte>(), NpgsqlDbType.Bytea, "\\x"),
        (new DateOnly(2024, 2, 29), NpgsqlDbType.Date, "2024-02-29"),
        (new DateOnly(1, 1, 2), NpgsqlDbType.Date, "0001-01-02"),
        (DateOnly.MaxValue, NpgsqlDbType.Date, "infinity"),
        (new DateTime(2024, 2, 29, 13, 14, 15, DateTimeKind.Unspecified).AddTicks(1234560), NpgsqlDbType.Timestamp, "2024-02-29 13:14:15.123456"),
        (new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Unspecified), NpgsqlDbType.Timestamp, "1999-12-31 23:59:59"),
        (DateTime.MinValue, NpgsqlDbType.Timestamp, "-infinity"),
        (new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(5_000_000), NpgsqlDbType.TimestampTz, "2024-01-02 03:04:05.5+00"),
        (new NpgsqlInterval(14, 3, 14_706_500_000), NpgsqlDbType.Interval, "1 year 2 mons 3 days 04:05:06.5"),
        (new NpgsqlInterval(-1, -2, -3_000_000), NpgsqlDbType.Interval, "-1 mons -2 days -00:00:03"),
        (new NpgsqlInterval(0, 0, 0), NpgsqlDbType.Interval, "00:00:00"),
        (new NpgsqlInterval(1, -1, 1), NpgsqlDbType.Interval, "1 mon -1 days +00:00:00.000001"),
        (Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff"), NpgsqlDbType.Uuid, "6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
        ("{\"a\": [1, 2], \"b\": null}", NpgsqlDbType.Jsonb, "{\"a\": [1, 2], \"b\": null}"),
    ];

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var c = new NpgsqlConnection(_server.ConnectionString(extra: "Pooling=false"));
        await c.OpenAsync();
        return c;
    }

    private static NpgsqlCommand EchoCommand(NpgsqlConnection c, IEnumerable<(object Value, NpgsqlDbType Type)> values)
    {
        var cmd = new NpgsqlCommand { Connection = c };
        var items = new List<string>();
        foreach ((object value, NpgsqlDbType type) in values)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
            items.Add("$" + cmd.Parameters.Count);
        }

        cmd.CommandText = "SELECT " + string.Join(", ", items);
        return cmd;
    }

    [Fact]
    public async Task Parameters_EveryTypeBinary_RoundTripExactly()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using NpgsqlCommand cmd = EchoCommand(c, Samples.Select(s => (s.Value, s.Type)));
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        for (int i = 0; i < Samples.Length; i++)
        {
            object expected = Samples[i].Value;
            object actual = expected switch
            {
                DateOnly => reader.GetFieldValue<DateOnly>(i),
                NpgsqlInterval => reader.GetFieldValue<NpgsqlInterval>(i),
                _ => reader.GetValue(i),
            };
            Assert.Equal(expected, actual);
            if (expected is decimal d)
            {
                Assert.Equal(d.ToString(System.Globalization.CultureInfo.InvariantCulture), ((decimal)actual).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            if (expected is DateTime dt)
            {
                Assert.Equal(dt.Kind, ((DateTime)actual).Kind);
            }
        }

        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task Results_EveryTypeAsText_MatchPostgresTextOutput()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using NpgsqlCommand cmd = EchoCommand(c, Samples.Select(s => (s.Value, s.Type)));
        cmd.AllResultTypesAreUnknown = true;
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        for (int i = 0; i < Samples.Length; i++)
        {
            Assert.Equal(Samples[i].Text, reader.GetString(i));
        }
    }

    [Fact]
    public async Task Parameters_EveryTypeSentAsText_ParsedByServer()
    {
        await using NpgsqlConnection c = await OpenAsync();
        foreach ((object value, NpgsqlDbType type, string text) in Samples)
        {
            string typeName = type switch
            {
                NpgsqlDbType.Boolean => "bool",
                NpgsqlDbType.Smallint => "int2",
                NpgsqlDbType.Integer => "int4",
                NpgsqlDbType.Bigint => "int8",
                NpgsqlDbType.Real => "float4",
                NpgsqlDbType.Double => "float8",
                NpgsqlDbType.Numeric => "numeric",
                NpgsqlDbType.Text => "text",
                NpgsqlDbType.Varchar => "varchar",
                NpgsqlDbType.Char => "bpchar",
                NpgsqlDbType.Bytea => "bytea",
                NpgsqlDbType.Date => "date",
                NpgsqlDbType.Timestamp => "timestamp",
                NpgsqlDbType.TimestampTz => "timestamptz",
                NpgsqlDbType.Interval => "interval",
                NpgsqlDbType.Uuid => "uuid",
                NpgsqlDbType.Jsonb => "jsonb",
                _ => throw new InvalidOperationException(type.ToString()),
            };
            await using var cmd = new NpgsqlCommand($"SELECT $1::{typeName}", c);
            cmd.Parameters.Add(new NpgsqlParameter { Value = text, NpgsqlDbType = NpgsqlDbType.Unknown });
            await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            object actual = value switch
            {
                DateOnly => reader.GetFieldValue<DateOnly>(0),
                NpgsqlInterval => reader.GetFieldValue<NpgsqlInterval>(0),
                _ => reader.GetValue(0),
            };
            Assert.Equal(value, actual);
        }
    }

    [Fact]
    public async Task Parameters_NullOfEveryType_ComeBackNull()
    {
        await using NpgsqlConnection c = await OpenAsync();
        NpgsqlDbType[] types = [.. Samples.Select(s => s.Type).Distinct()];
        await using NpgsqlCommand cmd = EchoCommand(c, types.Select(t => ((object)DBNull.Value, t)));
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        for (int i = 0; i < types.Length; i++)
        {
            Assert.True(reader.IsDBNull(i));
        }
    }

    [Fact]
    public async Task RowDescription_TypesAndNames_ReportedWithCorrectOids()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using NpgsqlCommand cmd = EchoCommand(c, Samples.Select(s => (s.Value, s.Type)));
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync();
        uint[] expected = [16, 16, 21, 23, 20, 700, 700, 701, 701, 701, 701, 1700, 1700, 1700, 1700, 1700, 1700, 1700, 25, 25, 1043, 1042, 17, 17, 1082, 1082, 1082, 1114, 1114, 1114, 1184, 1186, 1186, 1186, 1186, 2950, 3802];
        Assert.Equal(expected, Enumerable.Range(0, reader.FieldCount).Select(reader.GetDataTypeOID).ToArray());
        Assert.All(Enumerable.Range(0, reader.FieldCount), i => Assert.Equal("?column?", reader.GetName(i)));
    }

    [Fact]
    public async Task TextParameter_InvalidInteger_Reports22P02AndConnectionStaysUsable()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT $1::int4", c);
        cmd.Parameters.Add(new NpgsqlParameter { Value = "twelve", NpgsqlDbType = NpgsqlDbType.Unknown });
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
        Assert.Equal("22P02", e.SqlState);
        Assert.Equal("invalid input syntax for type integer: \"twelve\"", e.MessageText);
        await using var ok = new NpgsqlCommand("SELECT 7", c);
        Assert.Equal(7, await ok.ExecuteScalarAsync());
    }
}
