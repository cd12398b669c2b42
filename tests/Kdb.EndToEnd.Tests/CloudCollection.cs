using Kdb.Testing.EndToEnd;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// One local cloud for the whole suite: starting it costs most of the budget. Tests run one after another and each
/// uses databases of its own; fault tests leave every service running again.
/// </summary>
[CollectionDefinition(Name)]
public sealed class CloudCollection : ICollectionFixture<EndToEndCloud>
{
    public const string Name = "EndToEnd cloud";

    /// <summary>Set by <c>./kdb test --soak</c>: the long versions (100 orgs, several fault rounds).</summary>
    public static bool Soak => Environment.GetEnvironmentVariable("KDB_SOAK") == "1";
}
