namespace Kdb.Raft.Tests.Simulation;

internal enum PartitionMode : byte
{
    None = 0,
    Random = 1,
    OneWay = 2,
    Bridge = 3,
    LeaderMinority = 4,
}

/// <summary>A named fault scenario; one seed of it is one deterministic run.</summary>
internal sealed record Scenario(string Name)
{
    public int Nodes { get; init; } = 3;
    public int SpareNodes { get; init; }
    public int DurationMs { get; init; } = 1800;
    public int HealMs { get; init; } = 1200;
    public double Drop { get; init; }
    public double Duplicate { get; init; }
    public double Replay { get; init; }
    public int MaxDelayMs { get; init; } = 4;
    public PartitionMode Partitions { get; init; }
    public int FaultEveryMs { get; init; } = 400;
    public bool CrashAny { get; init; }
    public bool CrashLeader { get; init; }
    public bool TornWrites { get; init; } = true;
    /// <summary>Probability of crashing at each crash point of a Ready cycle (before/after persist, apply, snapshot save and install).</summary>
    public double CrashPointRate { get; init; }
    public int SnapshotEvery { get; init; }
    public int RetainEntries { get; init; } = 5;
    public int SnapshotChunkBytes { get; init; } = 64;
    public int SnapshotPadding { get; init; }
    public bool Membership { get; init; }
    public bool Transfers { get; init; }
    public ReadMode ReadMode { get; init; } = ReadMode.ReadIndex;
    public bool PauseLeader { get; init; }
    public bool FarBehind { get; init; }
    public double ClockSkew { get; init; } = 0.02;
    public int Clients { get; init; } = 4;
    public int ClientTimeoutMs { get; init; } = 600;
    public int Keys { get; init; } = 3;
    /// <summary>Upper bound on the highest term at the end (0: not checked). PreVote and CheckQuorum keep terms from growing.</summary>
    public ulong MaxTerm { get; init; }
    /// <summary>Fault injection into the system under test, to prove the checkers catch real bugs: lease longer than safe by this much.</summary>
    public int UnsafeLeaseExtraMs { get; init; }
    /// <summary>Fault injection: the host never fsyncs (acknowledges what a crash loses).</summary>
    public bool UnsafeSkipFsync { get; init; }
    /// <summary>Fault injection: the host sends every message before persisting, not only <see cref="Ready.EarlyMessages"/>.</summary>
    public bool UnsafeSendAllEarly { get; init; }
    /// <summary><see cref="RaftConfig.AsyncLeaderAppend"/> on every seed (true), on none (false), or on even seeds (null).</summary>
    public bool? AsyncAppend { get; init; }
    /// <summary>Quiescence (<see cref="RaftConfig.QuiesceAfterTicks"/>) on every seed, on none, or on seeds 2 and 3 mod 4 (null).
    /// Quiescent runs give clients quiet stretches so groups really go idle, and run a failure detector.</summary>
    public bool? Quiesce { get; init; }
    /// <summary>Async-append runs: chance that a leader's fsync stalls (its early messages are out, it is busy for a few ms).</summary>
    public double StallRate { get; init; } = 0.3;
    /// <summary>Async-append runs: chance that a stalled leader crashes before its entries are durable.</summary>
    public double StallCrashRate { get; init; }

    public static IReadOnlyList<Scenario> All { get; } =
    [
        new("leader-crash-under-load") { CrashLeader = true, FaultEveryMs = 350, Clients = 5 },
        new("leader-isolated-minority") { Nodes = 5, Partitions = PartitionMode.LeaderMinority, FaultEveryMs = 400, Clients = 5 },
        new("random-partitions-heal") { Nodes = 5, Partitions = PartitionMode.Random, FaultEveryMs = 300 },
        new("one-way-partitions") { Nodes = 3, Partitions = PartitionMode.OneWay, FaultEveryMs = 400, MaxTerm = 20 },
        new("bridge-partition") { Nodes = 5, Partitions = PartitionMode.Bridge, FaultEveryMs = 600, MaxTerm = 20 },
        new("lossy-network") { Drop = 0.2, Duplicate = 0.1, Replay = 0.02, MaxDelayMs = 12 },
        new("crash-torn-tail") { CrashAny = true, FaultEveryMs = 250, TornWrites = true },
        new("snapshot-crash-points") { CrashPointRate = 0.004, SnapshotEvery = 15, RetainEntries = 3, SnapshotPadding = 300 },
        new("membership-changes") { Nodes = 3, SpareNodes = 2, Membership = true, CrashAny = true, FaultEveryMs = 200, SnapshotEvery = 40 },
        new("snapshot-far-behind") { FarBehind = true, SnapshotEvery = 20, RetainEntries = 2, SnapshotPadding = 900, CrashPointRate = 0.002, Clients = 6 },
        new("transfer-with-reads") { Transfers = true, FaultEveryMs = 250, Clients = 6 },
        new("lease-read-paused-leader") { ReadMode = ReadMode.Lease, PauseLeader = true, FaultEveryMs = 500, Clients = 6, Keys = 6, ClockSkew = 0.05, ClientTimeoutMs = 150 },
        new("async-append-leader-crash") { Nodes = 5, AsyncAppend = true, CrashLeader = true, FaultEveryMs = 300, StallRate = 0.5, StallCrashRate = 0.03, Clients = 6 },
        new("quiesce-wake") { Quiesce = true, CrashAny = true, Partitions = PartitionMode.Random, Nodes = 5, FaultEveryMs = 250, ReadMode = ReadMode.Lease, ClockSkew = 0.05 },
    ];

    public static Scenario Get(string name)
    {
        foreach (var s in All)
        {
            if (s.Name == name)
            {
                return s;
            }
        }
        throw new ArgumentException($"unknown scenario '{name}'");
    }
}
