using Kdb.Provisioning.ControlPlane;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// The progress that gates operation heartbeats: bytes moved anywhere in the operation's async flow count for it, and
/// nothing else does, so an attempt that hangs falls silent and its request is re-sent.
/// </summary>
public sealed class OperationProgressTests
{
    [Fact]
    public async Task Bytes_MovedInTheOperationsFlow_Count_AndNothingOutsideIt()
    {
        var progress = Begin();
        var data = new byte[10_000];
        Random.Shared.NextBytes(data);

        // Written through a counting stream in a task the operation started, read back through another after an await.
        var copy = new MemoryStream();
        await Task.Run(async () =>
        {
            await using var sink = OperationProgress.Counting(new NonClosing(copy));
            await sink.WriteAsync(data.AsMemory(0, 4_000));
            sink.Write(data, 4_000, 6_000);
        });
        Assert.Equal(10_000, progress.Units);
        copy.Position = 0;
        await using (var source = OperationProgress.Counting(copy))
        {
            var read = new byte[data.Length];
            var total = 0;
            int n;
            while ((n = await source.ReadAsync(read.AsMemory(total))) > 0)
            {
                total += n;
            }
            Assert.Equal(data, read);
        }
        Assert.Equal(20_000, progress.Units);

        // A flow that does not carry the operation (another consumer's work) does not count for it.
        Task outside;
        using (ExecutionContext.SuppressFlow())
        {
            outside = Task.Run(() => OperationProgress.Report(1_000));
        }
        await outside;
        OperationProgress.Report(0);
        OperationProgress.Report(-5);
        Assert.Equal(20_000, progress.Units);
    }

    [Fact]
    public async Task Two_Operations_InTheirOwnFlows_CountApart()
    {
        var first = Task.Run(async () =>
        {
            var mine = Begin();
            await Task.Yield();
            OperationProgress.Report(3);
            return mine;
        });
        var second = Task.Run(async () =>
        {
            var mine = Begin();
            await Task.Yield();
            OperationProgress.Report(7);
            return mine;
        });
        Assert.Equal((3L, 7L), ((await first).Units, (await second).Units));
    }

    [Fact]
    public async Task A_declared_quiet_phase_keeps_the_operation_alive_for_its_bound_only()
    {
        var progress = Begin();
        Assert.False(progress.QuietExpected);

        await Task.Run(() => OperationProgress.ExpectQuiet(TimeSpan.FromHours(1)));
        Assert.True(progress.QuietExpected);

        OperationProgress.ExpectQuiet(TimeSpan.Zero);
        Assert.False(progress.QuietExpected);

        // Outside the operation's flow a declaration reaches nothing.
        Task outside;
        using (ExecutionContext.SuppressFlow())
        {
            outside = Task.Run(() => OperationProgress.ExpectQuiet(TimeSpan.FromHours(1)));
        }
        await outside;
        Assert.False(progress.QuietExpected);
        Assert.Equal(0, progress.Units);
    }

    [Fact]
    public void The_quiet_bound_grows_with_the_data_from_a_minute()
    {
        Assert.Equal(TimeSpan.FromSeconds(60), Kdb.Provisioning.Backups.BackupService.QuietPhaseBound(0));
        Assert.Equal(TimeSpan.FromSeconds(60), Kdb.Provisioning.Backups.BackupService.QuietPhaseBound(-1));
        Assert.Equal(TimeSpan.FromSeconds(560), Kdb.Provisioning.Backups.BackupService.QuietPhaseBound(1_000_000_000));
    }

    // As the heartbeats' Start does: begun in a synchronous method, so the value stays with the caller's flow.
    private static OperationProgress Begin() => OperationProgress.Begin();

    private sealed class NonClosing(Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }
}
