using System.Text.Json;
using Kdb.Contracts.V1;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.Contracts.Tests;

public sealed class EventContractTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 22, 3, 0, 0, TimeSpan.Zero);
    private static readonly DatabaseLimits Limits = new(100, 500, 10L << 30);
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private const string Verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";

    public static TheoryData<IKdbEvent> Samples() =>
    [
        new DatabaseRequested("op_01", At, "db_0123456789abcdef", ulong.MaxValue - 1, "org_01", new RoleVerifier("owner", RoleKind.Owner, Verifier), Limits),
        new DatabaseProvisioned("op_02", At, "db_0123456789abcdef", 42),
        new DatabaseProvisioningFailed("op_03", At, "db_0123456789abcdef", "no capacity"),
        new DatabaseDeletionRequested("op_04", At, "db_0123456789abcdef"),
        new DatabaseDeleted("op_05", At, "db_0123456789abcdef"),
        new RoleChanged("op_06", At, "db_0123456789abcdef", "app", RoleKind.ReadWrite, Verifier, false),
        new QuotaStateChanged("op_07", At, "db_0123456789abcdef", QuotaState.Suspended),
        new BackupRequested("op_08", At, "bkp_01", "db_0123456789abcdef", "org_01"),
        new BackupCompleted("op_09", At, "bkp_01", "db_0123456789abcdef", new BackupResult(1234, "ab", 99, "key_01")),
        new BackupFailed("op_10", At, "bkp_01", "db_0123456789abcdef", "node down"),
        new BackupExpired("op_11", At, "bkp_01"),
        new RestoreDrillRequested("op_12", At, ["bkp_01", "bkp_02"]),
        new BackupVerified("op_13", At, "bkp_01", "rows match"),
        new RestoreDrillFailed("op_14", At, "bkp_01", "checksum"),
        new RestoreRequested("op_15", At, "bkp_01", "db_0123456789abcdef", new RestoreTarget("db_fedcba9876543210", 7, "org_01", Limits), false),
        new RestoreCompleted("op_16", At, "db_fedcba9876543210", [new RoleVerifier("owner", RoleKind.Owner, Verifier)]),
        new RestoreFailed("op_17", At, "db_fedcba9876543210", "backup missing"),
        new DatabaseDeletionRequested("op_18", At, "db_0123456789abcdef", Retain: true),
        new DatabaseUndeleteRequested("op_19", At, "db_0123456789abcdef", QuotaState.ReadOnly),
        new DatabaseUndeleted("op_20", At, "db_0123456789abcdef"),
        new DatabaseMoveRequested("op_21", At, "db_0123456789abcdef", 42, ulong.MaxValue >> 1, QuotaState.Ok),
        new DatabaseMoved("op_22", At, "db_0123456789abcdef", ulong.MaxValue >> 1, ulong.MaxValue - 3),
        new DatabaseMoveFailed("op_23", At, "db_0123456789abcdef", "target group unknown"),
    ];

    [Fact]
    public void Samples_CoverEveryEventType()
    {
        var eventTypes = typeof(IKdbEvent).Assembly.GetTypes().Where(t => typeof(IKdbEvent).IsAssignableFrom(t) && !t.IsInterface).ToHashSet();
        var sampled = ((IEnumerable<object[]>)Samples()).Select(row => row[0].GetType()).ToHashSet();

        Assert.Equal(22, eventTypes.Count);
        Assert.Equal(eventTypes.OrderBy(t => t.Name), sampled.OrderBy(t => t.Name));
        Assert.All(eventTypes, t => Assert.True(t.IsSealed && t.Namespace == "Kdb.Contracts.V1", t.Name));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Publish_OverTheInMemoryBus_ArrivesEqual(IKdbEvent sample)
    {
        await using var provider = new ServiceCollection()
            .AddMassTransitTestHarness(bus => bus.AddConsumer(typeof(Recorder<>).MakeGenericType(sample.GetType())))
            // The harness ends a wait after its inactivity timeout (seconds by default); on a loaded 2-core box the
            // first delivery of a theory (JIT, bus start) can take longer than that without anything being wrong.
            .Configure<TestHarnessOptions>(options =>
            {
                options.TestTimeout = Patience;
                options.TestInactivityTimeout = Patience;
            })
            .BuildServiceProvider(true);
        var harness = provider.GetRequiredService<ITestHarness>();
        await harness.Start();

        await harness.Bus.Publish(sample, sample.GetType());

        var received = await WaitConsumedAsync(harness, sample.GetType());
        Assert.Equal(JsonSerializer.Serialize(sample, sample.GetType()), JsonSerializer.Serialize(received, sample.GetType()));
    }

    [Fact]
    public void BackupRequested_FromASenderWithoutOrgId_StillReads()
    {
        // OrgId was added later and is optional: a message queued by an older control plane must still deserialize.
        const string Old = """{"OperationId":"op_08","Timestamp":"2026-11-22T03:00:00+00:00","BackupId":"bkp_01","DatabaseId":"db_0123456789abcdef"}""";

        var read = JsonSerializer.Deserialize<BackupRequested>(Old)!;

        Assert.Equal(new BackupRequested("op_08", At, "bkp_01", "db_0123456789abcdef"), read);
        Assert.Null(read.OrgId);
    }

    [Fact]
    public void WireEnums_KeepTheirValues()
    {
        Assert.Equal([0, 1, 2], Enum.GetValues<RoleKind>().Select(v => (int)v));
        Assert.Equal(["Owner", "ReadWrite", "ReadOnly"], Enum.GetNames<RoleKind>());
        Assert.Equal([0, 1, 2, 3, 4], Enum.GetValues<QuotaState>().Select(v => (int)v));
        Assert.Equal(["Ok", "Warning", "Throttled", "ReadOnly", "Suspended"], Enum.GetNames<QuotaState>());
    }

    private static async Task<object> WaitConsumedAsync(ITestHarness harness, Type type)
    {
        var method = typeof(EventContractTests).GetMethod(nameof(WaitTypedAsync), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.MakeGenericMethod(type);
        return await (Task<object>)method.Invoke(null, [harness])!;
    }

    private static async Task<object> WaitTypedAsync<T>(ITestHarness harness)
        where T : class
    {
        using var cts = new CancellationTokenSource(Patience);
        await foreach (var consumed in harness.Consumed.SelectAsync<T>(cts.Token))
        {
            return consumed.Context.Message;
        }

        throw new TimeoutException($"{typeof(T).Name} was not consumed");
    }

    private sealed class Recorder<T> : IConsumer<T>
        where T : class
    {
        public Task Consume(ConsumeContext<T> context) => Task.CompletedTask;
    }
}
