using System.Globalization;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Kdb.Testing.Tokens;

namespace Kdb.Testing.Proxy;

/// <summary>A real <c>Kdb.Proxy</c> process on free loopback ports, following a route table at <c>controlPlane</c>.</summary>
public sealed class ProxyProcess : IAsyncDisposable
{
    private ILaunchedProcess? _process;

    private ProxyProcess()
    {
        PgPort = FreePorts.Allocate();
        HttpPort = FreePorts.Allocate();
        ManagementPort = FreePorts.Allocate();
    }

    public int PgPort { get; }

    public int HttpPort { get; }

    public int ManagementPort { get; }

    public string Log => _process?.Log ?? string.Empty;

    public int ProcessId => _process?.ProcessId ?? 0;

    /// <summary>
    /// Starts the proxy with the <paramref name="issuer"/>'s <c>kdb.proxy</c> token and JWKS; <paramref name="settings"/> adds
    /// configuration (<c>Proxy:ThrottleBaseDelay</c>, <c>Tls:Certificate</c>, …). Ready once the management port answers 200 on
    /// <paramref name="readinessPath"/> (<c>/health/ready</c> needs a loaded route table; <c>/health/live</c> does not).
    /// <paramref name="environment"/> adds process environment variables (runtime settings such as <c>DOTNET_gcServer</c>).
    /// </summary>
    public static async Task<ProxyProcess> StartAsync(Uri controlPlane, TestTokenIssuer issuer, IReadOnlyDictionary<string, string>? settings = null, string readinessPath = "/health/ready", IReadOnlyDictionary<string, string>? environment = null)
    {
        var proxy = new ProxyProcess();
        var arguments = new List<string>
        {
            "--Proxy:PgPort=" + proxy.PgPort.ToString(CultureInfo.InvariantCulture),
            "--Proxy:HttpPort=" + proxy.HttpPort.ToString(CultureInfo.InvariantCulture),
            "--Proxy:ManagementPort=" + proxy.ManagementPort.ToString(CultureInfo.InvariantCulture),
            "--Proxy:ProxyId=test-proxy",
            "--Proxy:DevelopmentLoopbackAuth=true",
            "--Proxy:ServiceToken=" + issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy], TimeSpan.FromHours(4)),
            "--ControlPlane:Url=" + controlPlane.GetLeftPart(UriPartial.Authority),
            "--Tokens:Issuer=" + issuer.Issuer,
            "--Tokens:JwksUri=" + issuer.JwksUri,
            "--Tokens:AllowHttpIssuer=true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            arguments.Add($"--{key}={value}");
        }

        var spec = ProcessSpec.DotNet(RepoPaths.BuiltAssembly("proxy/Kdb.Proxy"), [.. arguments]) with
        {
            Name = "kdb-proxy",
            Environment = new Dictionary<string, string?>(
                (environment ?? new Dictionary<string, string>()).Select(e => new KeyValuePair<string, string?>(e.Key, e.Value)))
            {
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            },
            Readiness = Readiness.Http($"http://127.0.0.1:{proxy.ManagementPort}{readinessPath}"),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        };
        proxy._process = await ProcessLauncher.StartAsync(spec);
        return proxy;
    }

    /// <summary>An Npgsql connection string through the proxy (no pooling, plaintext on loopback).</summary>
    public string ConnectionString(string database, string user, string password, string? extra = null) =>
        $"Host=127.0.0.1;Port={PgPort};Username={user};Password={password};Database={database};Timeout=30;Command Timeout=60;Pooling=false;SSL Mode=Disable;Gss Encryption Mode=Disable" +
        (extra is null ? string.Empty : ";" + extra);

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }
}
