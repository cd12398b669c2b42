using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kdb.PgWire.Auth;
using Kdb.PgWire.Server;

namespace Kdb.PgWire.Tests.Support;

/// <summary>
/// Hosts <see cref="PgConnectionHandler"/> on a loopback TcpListener, each NetworkStream wrapped with
/// PipeReader.Create/PipeWriter.Create (the node host uses Kestrel's pipes instead).
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    public const string User = "alice";
    public const string Password = "s3cret-pw";
    public const string DatabaseName = "db1";

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _acceptLoop;
    private readonly X509Certificate2? _certificate;

    public TestServer(PgServerOptions? options = null, bool tls = false, TestDatabase? database = null)
    {
        Options = options ?? new PgServerOptions();
        Database = database ?? new TestDatabase();
        Authenticator = new TestAuthenticator();
        Authenticator.AddRole(DatabaseName, User, ScramSha256Verifier.Create(Password).ToString());
        Authenticator.AddRole(DatabaseName, "bob", ScramSha256Verifier.Create("bobs-password").ToString());
        _certificate = tls ? CreateCertificate() : null;
        Handler = new PgConnectionHandler(Options, new TestSessionFactory(Database), Authenticator);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptAsync();
    }

    public PgServerOptions Options { get; }

    public TestDatabase Database { get; }

    public TestAuthenticator Authenticator { get; }

    public PgConnectionHandler Handler { get; }

    public int Port { get; }

    public string ConnectionString(string user = User, string password = Password, string database = DatabaseName, string extra = "") =>
        $"Host=127.0.0.1;Port={Port};Username={user};Password={password};Database={database};Server Compatibility Mode=NoTypeLoading;Include Error Detail=true;Timeout=15;Command Timeout=30;{extra}";

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            socket.NoDelay = true;
            lock (_connections)
            {
                _connections.Add(ServeAsync(socket));
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var pipe = new StreamPipe(stream);
        var info = new PgConnectionInfo(
            IsLoopback: IPAddress.IsLoopback(((IPEndPoint)socket.RemoteEndPoint!).Address),
            UpgradeToTls: _certificate is null ? null : PgTls.CreateUpgrade(pipe, _certificate));
        await Handler.HandleAsync(pipe, info, _stop.Token);
    }

    internal static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _acceptLoop;
        Task[] all;
        lock (_connections)
        {
            all = [.. _connections];
        }

        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(30));
        _certificate?.Dispose();
        _stop.Dispose();
    }

    private sealed class StreamPipe(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream);

        public PipeWriter Output { get; } = PipeWriter.Create(stream);
    }
}
