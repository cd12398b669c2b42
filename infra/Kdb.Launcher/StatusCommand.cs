using System.Text.Json;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary><c>./kdb status</c>: every service with its pid, address and readiness.</summary>
internal sealed class StatusCommand(KdbPaths paths, IAnsiConsole console)
{
    public sealed record Row(string Service, int? Pid, string Url, bool Ready, string? Note);

    public async Task<IReadOnlyList<Row>> CollectAsync(CancellationToken cancellationToken)
    {
        var saved = StateFile.Load(paths) ?? new CloudOptions(3, RabbitMq: false);
        var options = saved with { Nodes = Math.Max(saved.Nodes, StateFile.MaxNodeIndex(paths)) };
        var topology = Topology.Build(paths, Secrets.LoadOrCreate(paths.SecretsFile), new DevCertificates(paths.Tls), options);
        var rows = new List<Row>();
        foreach (var service in topology.Services)
        {
            var running = service.FindRunning();
            var ready = running is not null && await service.IsReadyAsync(cancellationToken);
            rows.Add(new Row(service.Name, running?.Pid, service.Url, ready, null));
            if (service.Name == "controlplane" && !options.RabbitMq)
            {
                // With the in-memory bus the provisioning consumers live inside the control plane.
                rows.Add(new Row("provisioning", running?.Pid, service.Url, ready, "in controlplane (in-memory bus)"));
            }
        }

        return rows;
    }

    public async Task<int> RunAsync(bool json, CancellationToken cancellationToken)
    {
        paths.EnsureDirectories();
        var rows = await CollectAsync(cancellationToken);
        if (json)
        {
            var items = rows.Select(r => new { service = r.Service, pid = r.Pid, url = r.Url, ready = r.Ready });
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(items));
            return 0;
        }

        var table = new Table().AddColumns("service", "pid", "url", "ready", "note");
        foreach (var row in rows)
        {
            table.AddRow(
                Markup.Escape(row.Service),
                row.Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                Markup.Escape(row.Url),
                row.Ready ? "[green]yes[/]" : row.Pid is null ? "[grey]stopped[/]" : "[yellow]no[/]",
                Markup.Escape(row.Note ?? string.Empty));
        }

        console.Write(table);
        return 0;
    }

    public void PrintEndpoints(Topology topology)
    {
        var table = new Table().Title("Kdb.Cloud local endpoints").AddColumns("what", "where");
        table.AddRow("portal", $"http://127.0.0.1:{paths.Port(CloudOptions.PortalPort)}");
        table.AddRow("management API", $"http://127.0.0.1:{paths.Port(CloudOptions.ControlPlanePort)}");
        table.AddRow("proxy PostgreSQL", $"127.0.0.1:{paths.Port(CloudOptions.ProxyPgPort)}");
        table.AddRow("proxy HTTP data API", $"http://127.0.0.1:{paths.Port(CloudOptions.ProxyHttpPort)}");
        table.AddRow("control-plane PostgreSQL", Markup.Escape(topology.Postgres.Url));
        if (topology.RabbitMq is { } rabbit)
        {
            table.AddRow("RabbitMQ", Markup.Escape(rabbit.Url));
        }

        table.AddRow("development CA", Markup.Escape(new DevCertificates(paths.Tls).CaCertificatePath));
        table.AddRow("logs", Markup.Escape(paths.Logs));
        console.Write(table);
    }
}
