namespace Kdb.Testing;

/// <summary>
/// Names for xunit collections that share one server per test run. xunit only discovers collection definitions
/// in the test assembly itself, so each suite declares them once, for example:
/// <code>
/// [CollectionDefinition(TestCollections.Postgres)]
/// public sealed class PostgresCollection : ICollectionFixture&lt;PostgresFixture&gt;;
/// </code>
/// and marks its classes with <c>[Collection(TestCollections.Postgres)]</c>.
/// </summary>
public static class TestCollections
{
    /// <summary>Classes sharing one private PostgreSQL server (<see cref="Postgres.PostgresFixture"/>).</summary>
    public const string Postgres = "Kdb.Testing.Postgres";

    /// <summary>Classes sharing one private RabbitMQ node (<see cref="RabbitMq.RabbitMqFixture"/>).</summary>
    public const string RabbitMq = "Kdb.Testing.RabbitMq";
}
