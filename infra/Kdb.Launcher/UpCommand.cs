using System.Runtime.InteropServices;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary><c>./kdb up</c>: builds, starts what is not running, waits until everything is ready.</summary>
internal sealed class UpCommand(KdbPaths paths, IAnsiConsole console)
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    public async Task<int> RunAsync(int? nodeCount, string? bus, bool detach, bool build, CancellationToken cancellationToken)
    {
        paths.EnsureDirectories();
        var saved = StateFile.Load(paths);
        var controlPlaneRunning = ProcessControl.ReadPidFile(paths.PidFile("controlplane")) is { } cp && ProcessControl.IsAlive(cp);

        // Bringing back a service of a running cloud must not shrink it: its nodes hold replicas.
        var nodes = nodeCount ?? (saved is not null && AnyRunning(saved) ? saved.Nodes : 3);
        if (nodes is < 1 or > 9)
        {
            throw new LauncherException("--nodes must be between 1 and 9 (node ports are 7000+N … 7300+N).", 2);
        }

        if (bus is not null and not ("inmemory" or "rabbitmq"))
        {
            throw new LauncherException($"--bus must be 'inmemory' or 'rabbitmq', not '{bus}'.", 2);
        }

        var rabbit = bus is null ? controlPlaneRunning && saved is { RabbitMq: true } : bus == "rabbitmq";
        if (controlPlaneRunning && saved is not null && saved.RabbitMq != rabbit)
        {
            throw new LauncherException($"the local cloud is running with --bus {(saved.RabbitMq ? "rabbitmq" : "inmemory")}; run ./kdb down first to switch.", 2);
        }

        var options = new CloudOptions(nodes, rabbit);
        await Prerequisites.EnsureAsync(console, rabbit ? [Prerequisites.PostgresServer, Prerequisites.RabbitMq] : [Prerequisites.PostgresServer]);
        if (build)
        {
            await BuildAsync();
        }

        var secrets = Secrets.LoadOrCreate(paths.SecretsFile);
        var certs = new DevCertificates(paths.Tls);
        certs.EnsureCreated(TimeProvider.System);
        var topology = Topology.Build(paths, secrets, certs, options);
        StateFile.Save(paths, options);

        // Every port is checked before anything starts, so a conflict leaves nothing half-started.
        var toStart = topology.Services.Where(s => s.FindRunning() is null).ToList();
        foreach (var service in toStart)
        {
            foreach (var port in service.Ports)
            {
                if (!PortProbe.IsFree(port))
                {
                    throw new LauncherException($"port {port}, needed by {service.Name}, is taken by {PortProbe.DescribeOwner(port)}. Stop it, then run ./kdb up again.", 4);
                }
            }
        }

        foreach (var service in topology.Services)
        {
            if (!toStart.Contains(service))
            {
                console.MarkupLineInterpolated($"[grey]{service.Name} already running (pid {service.FindRunning()?.Pid})[/]");
                continue;
            }

            console.MarkupLineInterpolated($"starting [bold]{service.Name}[/]…");
            await service.StartAsync(cancellationToken);

            // The message broker comes up before the services that connect to it at start-up.
            if (service is RabbitMqService)
            {
                await WaitReadyAsync([service], TimeSpan.FromSeconds(90), cancellationToken);
            }
        }

        await WaitReadyAsync(topology.Services, ReadyTimeout, cancellationToken);
        new StatusCommand(paths, console).PrintEndpoints(topology);
        await SeedDemoAsync(secrets, cancellationToken);
        if (detach)
        {
            console.MarkupLine("[green]local cloud is up[/] (detached: ./kdb status, ./kdb logs SERVICE, ./kdb down)");
            return 0;
        }

        console.MarkupLine("[green]local cloud is up[/] — Ctrl-C stops everything");
        var stop = new TaskCompletionSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.TrySetResult(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.TrySetResult(); });
        await stop.Task;
        console.MarkupLine("stopping…");
        return await new DownCommand(paths, console).RunAsync();
    }

    private bool AnyRunning(CloudOptions saved) =>
        Topology.Build(paths, Secrets.LoadOrCreate(paths.SecretsFile), new DevCertificates(paths.Tls), saved).Services.Any(s => s.FindRunning() is not null);

    private async Task SeedDemoAsync(Secrets secrets, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };
        var seeder = new DemoSeeder(http, new Uri($"http://127.0.0.1:{paths.Port(CloudOptions.ControlPlanePort)}"), TimeProvider.System);
        var demo = await console.Status().StartAsync("seeding the demo account and database…", _ =>
            seeder.SeedAsync(secrets["KDB_DEMO_PASSWORD"], $"http://127.0.0.1:{paths.Port(CloudOptions.PortalPort)}", paths.DemoEnvFile, cancellationToken));
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), paths.DemoEnvFile);
        relative = relative.Contains('/', StringComparison.Ordinal) ? relative : "./" + relative; // '.' searches PATH for a bare name
        console.MarkupLineInterpolated($"demo database [bold]{demo.DatabaseId}[/] is ready (details in {relative}):");
        console.MarkupLineInterpolated($"  psql \"$(. {relative} && echo \"$KDB_DEMO_URI\")\"");
        console.MarkupLineInterpolated($"  portal {demo.PortalUrl}  login {demo.Email} / {demo.Password}");
    }

    private async Task BuildAsync()
    {
        var (code, output) = await console.Status().StartAsync("building Release…", async _ =>
            await ProcessControl.RunAsync("dotnet", ["build", Path.Combine(paths.Root, "infra", "services.slnf"), "-c", paths.Configuration, "-nologo", "-v", "q", "-clp:NoSummary;ErrorsOnly"], workingDirectory: paths.Root, timeout: TimeSpan.FromMinutes(15)));
        if (code != 0)
        {
            throw new LauncherException($"the Release build failed:\n{Prerequisites.Tail(output, 40)}");
        }
    }

    private async Task WaitReadyAsync(IReadOnlyList<IManagedService> services, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var ready = new HashSet<string>(StringComparer.Ordinal);
        await console.Status().StartAsync("waiting for services to be ready…", async ctx =>
        {
            while (true)
            {
                foreach (var service in services)
                {
                    if (ready.Contains(service.Name))
                    {
                        continue;
                    }

                    if (service.FindRunning() is null)
                    {
                        throw new LauncherException($"{service.Name} exited during start-up. Last lines of {paths.LogFile(service.Name)}:\n{TailLog(service.Name)}");
                    }

                    if (await service.IsReadyAsync(cancellationToken))
                    {
                        ready.Add(service.Name);
                        console.MarkupLineInterpolated($"  [green]✓[/] {service.Name} ready");
                    }
                }

                var waiting = services.Where(s => !ready.Contains(s.Name)).Select(s => s.Name).ToList();
                if (waiting.Count == 0)
                {
                    return;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new LauncherException($"not ready after {timeout.TotalSeconds:0} s: {string.Join(", ", waiting)} (see ./kdb logs {waiting[0]})");
                }

                ctx.Status($"waiting for {string.Join(", ", waiting)}… ({ready.Count}/{services.Count} ready)");
                await Task.Delay(250, cancellationToken);
            }
        });
    }

    private string TailLog(string service)
    {
        var log = paths.LogFile(service);
        return File.Exists(log) ? Prerequisites.Tail(File.ReadAllText(log), 25) : "(no log)";
    }
}
