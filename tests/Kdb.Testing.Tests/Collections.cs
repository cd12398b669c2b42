using Kdb.Testing.Postgres;
using Kdb.Testing.RabbitMq;

namespace Kdb.Testing.Tests;

[CollectionDefinition(TestCollections.Postgres)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;

[CollectionDefinition(TestCollections.RabbitMq)]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqFixture>;
