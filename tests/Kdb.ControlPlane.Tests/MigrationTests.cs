using Kdb.ControlPlane.Data;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class MigrationTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Migrate_EmptyDatabase_YieldsExactlyTheModelsSchema_AndIsIdempotent()
    {
        await using var migrated = await postgres.CreateDatabaseAsync("mig");
        await using var fromModel = await postgres.CreateDatabaseAsync("model");

        var options = new DbContextOptionsBuilder<ControlPlaneDbContext>();
        DatabaseSetup.Configure(options, migrated.ConnectionString);
        await using (var context = new ControlPlaneDbContext(options.Options))
        {
            await context.Database.MigrateAsync();
            await context.Database.MigrateAsync();
            Assert.Empty(await context.Database.GetPendingMigrationsAsync());
        }

        await using (var connection = new NpgsqlConnection(fromModel.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(DatabaseSetup.GenerateSchemaScript(), connection);
            await command.ExecuteNonQueryAsync();
        }

        Assert.Equal(await DescribeSchemaAsync(fromModel.ConnectionString), await DescribeSchemaAsync(migrated.ConnectionString));
    }

    [Fact]
    public async Task FirstStart_OnAnEmptyDatabase_TouchesNoTableBeforeMigrating()
    {
        var logs = new CapturingLoggerProvider();
        await using var app = await ControlPlaneApp.StartAsync(postgres, logSink: logs);
        var early = logs.Messages.Where(m => m.Contains("does not exist", StringComparison.Ordinal) || m.StartsWith("Error Microsoft.AspNetCore.DataProtection", StringComparison.Ordinal)).ToList();
        Assert.True(early.Count == 0, string.Join("\n", early));
    }

    private static async Task<List<string>> DescribeSchemaAsync(string connectionString)
    {
        const string Sql = """
            SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(character_maximum_length::text, '')
              FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__EFMigrationsHistory'
            UNION ALL
            SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '__EFMigrationsHistory'
            UNION ALL
            SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> '"__EFMigrationsHistory"'::regclass
            ORDER BY 1
            """;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(Sql.Replace("'\"__EFMigrationsHistory\"'::regclass", "coalesce(to_regclass('\"__EFMigrationsHistory\"'), 0::regclass)", StringComparison.Ordinal), connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }
}
