using System.IO.Pipelines;
using System.Security.Cryptography;

namespace Kdb.PgWire.Server;

/// <summary>Settings of a pgwire endpoint.</summary>
public sealed class PgServerOptions
{
    /// <summary>
    /// Largest accepted frontend message body in bytes; a longer length word closes the connection with
    /// FATAL 08P01 before the body is buffered. Default 16 MB (PostgreSQL's hard limit is 1 GB).
    /// </summary>
    public int MaxMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Connections served at once; more get FATAL 53300 "sorry, too many clients already".</summary>
    public int MaxConnections { get; init; } = 100;

    /// <summary>
    /// Close a session that waits longer than this for its next message while outside a transaction block
    /// (57P05, like PostgreSQL's idle_session_timeout). Zero disables.
    /// </summary>
    public TimeSpan IdleSessionTimeout { get; init; }

    /// <summary>Cancel a statement running longer than this (57014). Zero disables.</summary>
    public TimeSpan StatementTimeout { get; init; }

    /// <summary>
    /// Secret from which fake SCRAM verifiers for unknown names are derived. Configure a stable value so the
    /// fake salt of a name does not change across restarts (which would reveal that the name does not exist).
    /// The default is random per process.
    /// </summary>
    public byte[] ServerSecret { get; init; } = RandomNumberGenerator.GetBytes(32);

    /// <summary>
    /// The development flag: accept cleartext token passwords (<c>--kdb:jwt=true</c>, <c>--kdb:proxy=true</c>)
    /// on loopback connections without TLS. Off in production: tokens then require TLS.
    /// </summary>
    public bool AllowTokenPasswordsWithoutTlsOnLoopback { get; init; }

    /// <summary>Reported as server_version.</summary>
    public string ServerVersion { get; init; } = "15.0";

    /// <summary>Reported as server_version_num.</summary>
    public int ServerVersionNum { get; init; } = 150000;

    /// <summary>Clock for timeouts (tests inject a fake).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>What the transport knows about one accepted connection.</summary>
/// <param name="IsLoopback">True when the peer is on loopback (the development flag only applies there).</param>
/// <param name="IsTls">True when the transport is already encrypted (TLS terminated outside).</param>
/// <param name="UpgradeToTls">
/// Called after the server answered an SSLRequest with 'S': performs the TLS handshake on the
/// transport and returns the encrypted pipe. Null when no certificate is configured (SSLRequest gets 'N').
/// <see cref="PgTls.CreateUpgrade"/> builds one from a certificate.
/// </param>
public sealed record PgConnectionInfo(bool IsLoopback = false, bool IsTls = false, Func<CancellationToken, ValueTask<IDuplexPipe>>? UpgradeToTls = null);
