using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Provisioning.Tests;

[CollectionDefinition(TestCollections.Postgres)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;
