using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kdb.Node.Sql;
using Kdb.PgWire.Server;
using Kdb.PgWire.Session;
using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Storage;
using Microsoft.AspNetCore.Connections;

namespace Kdb.Node.Standalone;

/// <summary>
/// The standalone node's data plane: one storage engine under the data directory, one SQL database per
/// configured database (each under its own tenant id), and the pgwire session factory and authenticator over
/// them. No Raft, no control plane.
/// </summary>
public sealed class StandaloneServer : IPgSessionFactory, IDisposable
{
    private readonly IKvEngine _engine;
    private readonly Dictionary<string, (SqlDatabase Database, StandaloneDatabaseOptions Options)> _databases = new(StringComparer.Ordinal);

    /// <summary>Opens the engine in <paramref name="dataDirectory"/>/<c>storage</c> and the configured databases.</summary>
    public StandaloneServer(string dataDirectory, StandaloneOptions options)
    {
        Options = options;
        _engine = KvEngine.Open(Path.Combine(dataDirectory, "storage"), options.MemtableBytes > 0
            ? new EngineOptions { Durability = options.Durability, MemtableBytes = options.MemtableBytes }
            : new EngineOptions { Durability = options.Durability });
        var store = new LocalSqlStore(_engine);
        Store = store;
        foreach (var db in options.Databases)
        {
            _databases[db.Name] = (new SqlDatabase(store, db.TenantId, db.Name), db);
        }

        ServerSecret = LoadOrCreateSecret(dataDirectory);
    }

    /// <summary>The settings it was opened with.</summary>
    public StandaloneOptions Options { get; }

    /// <summary>
    /// The secret the fake SCRAM verifiers of unknown names derive from: kept in the data directory so a name's
    /// fake salt does not change across restarts (which would tell that the name does not exist).
    /// </summary>
    public byte[] ServerSecret { get; }

    /// <summary>The in-process committer every database shares (its GC threshold advances in the background).</summary>
    public LocalSqlStore Store { get; }

    /// <summary>The storage engine (for statistics).</summary>
    public IKvEngine Engine => _engine;

    public ValueTask<IPgSession> OpenAsync(PgStartup startup, CancellationToken cancellationToken)
    {
        if (!_databases.TryGetValue(startup.Database, out var entry) || !entry.Options.Roles.TryGetValue(startup.User, out var role))
        {
            // Only a proxy-authenticated connection can get here for a name that does not exist.
            throw new PgException("3D000", $"database \"{startup.Database}\" does not exist", severity: "FATAL");
        }

        var session = new KdbPgSession(entry.Database.OpenSession(startup.User, role.Kind));
        try
        {
            session.ApplyStartup(startup);
        }
        catch
        {
            session.Inner.Dispose();
            throw;
        }

        return ValueTask.FromResult<IPgSession>(session);
    }

    /// <summary>The role <paramref name="user"/> of database <paramref name="database"/>, or null when either does not exist.</summary>
    public StandaloneRole? FindRole(string database, string user) =>
        _databases.TryGetValue(database, out var entry) && entry.Options.Roles.TryGetValue(user, out var role) ? role : null;

    /// <summary>The protocol settings from the standalone options.</summary>
    public PgServerOptions ProtocolOptions() => new()
    {
        MaxConnections = Options.MaxConnections,
        StatementTimeout = Options.StatementTimeout,
        IdleSessionTimeout = Options.IdleSessionTimeout,
        AllowTokenPasswordsWithoutTlsOnLoopback = Options.DevelopmentTokensOnLoopback,
        ServerSecret = ServerSecret,
        ServerVersion = "15.0 (kdb)",
    };

    /// <summary>The TLS certificate offered on SSLRequest, or null (SSLRequest is then answered 'N').</summary>
    public X509Certificate2? LoadCertificate() =>
        string.IsNullOrEmpty(Options.TlsCertificatePath) ? null : X509CertificateLoader.LoadPkcs12FromFile(Options.TlsCertificatePath, Options.TlsCertificatePassword);

    public void Dispose() => _engine.Dispose();

    private static byte[] LoadOrCreateSecret(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "pgwire-secret");
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            return existing.Length == 32 ? existing : throw new InvalidDataException($"{path} must hold 32 bytes; it holds {existing.Length}.");
        }

        var secret = RandomNumberGenerator.GetBytes(32);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(secret);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: false);
        return secret;
    }
}

/// <summary>Kestrel's side of a pgwire listener: each accepted connection runs the protocol handler.</summary>
internal sealed class PgKestrelConnectionHandler(PgConnectionHandler handler, StandaloneTls tls) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        var loopback = connection.RemoteEndPoint is IPEndPoint ip && IPAddress.IsLoopback(ip.Address);
        var info = new PgConnectionInfo(IsLoopback: loopback, UpgradeToTls: tls.Certificate is null ? null : PgTls.CreateUpgrade(connection.Transport, tls.Certificate));
        return handler.HandleAsync(connection.Transport, info, connection.ConnectionClosed);
    }
}

/// <summary>The certificate of the pgwire listener, if any.</summary>
internal sealed record StandaloneTls(X509Certificate2? Certificate);
