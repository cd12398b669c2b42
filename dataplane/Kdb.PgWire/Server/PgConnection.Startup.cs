using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Kdb.PgWire.Auth;
using Kdb.PgWire.Protocol;
using Kdb.PgWire.Session;

namespace Kdb.PgWire.Server;

internal sealed partial class PgConnection
{
    // PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
    private const int MaxStartupPacket = 10000;

    private static readonly string[] OptionsSeparators = [" ", "\t"];

    /// <summary>Startup phase through ReadyForQuery. False when the connection should just close (CancelRequest, EOF).</summary>
    private async ValueTask<bool> StartupAsync()
    {
        bool sslAsked = false;
        bool gssAsked = false;
        while (true)
        {
            byte[]? packet = await ReadStartupPacketAsync().ConfigureAwait(false);
            if (packet is null)
            {
                return false;
            }

            int code = BinaryPrimitives.ReadInt32BigEndian(packet);
            switch (code)
            {
                case StartupCodes.SslRequest or StartupCodes.GssEncRequest when packet.Length == 4:
                    // libpq may try GSSAPI encryption, then SSL; asking twice for the same one is a protocol violation.
                    ref bool asked = ref code == StartupCodes.SslRequest ? ref sslAsked : ref gssAsked;
                    if (asked || _isTls)
                    {
                        return false;
                    }

                    asked = true;
                    await NegotiateEncryptionAsync(code == StartupCodes.SslRequest).ConfigureAwait(false);
                    continue;
                case StartupCodes.CancelRequest when packet.Length == 12:
                    _handler.Cancel(BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(4)), BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(8)));
                    return false;
            }

            int major = code >> 16;
            int minor = code & 0xFFFF;
            if (major != 3)
            {
                throw new PgException(PgSqlState.FeatureNotSupported, $"unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0", severity: "FATAL");
            }

            Dictionary<string, string> parameters = ParseStartupParameters(packet.AsSpan(4), out List<string> unrecognized);
            if (minor > 0 || unrecognized.Count > 0)
            {
                _writer.Write(new NegotiateProtocolVersionMessage(StartupCodes.ProtocolVersion3, unrecognized));
            }

            if (!parameters.TryGetValue("user", out string? user) || user.Length == 0)
            {
                throw new PgException(PgSqlState.InvalidAuthorization, "no PostgreSQL user name specified in startup packet", severity: "FATAL");
            }

            string database = parameters.TryGetValue("database", out string? db) && db.Length > 0 ? db : user;
            PgAuthMethod method = ParseOptions(parameters);

            if (!_handler.TryAcquireSlot())
            {
                throw new PgException(PgSqlState.TooManyConnections, "sorry, too many clients already", severity: "FATAL");
            }

            _slotHeld = true;
            await AuthenticateAsync(method, database, user).ConfigureAwait(false);
            await OpenSessionAsync(new PgStartup(user, database, parameters, method, _isTls)).ConfigureAwait(false);
            return true;
        }
    }

    /// <summary>Reads an untyped startup-phase packet (int32 length, then the body); returns the body, or null at EOF.</summary>
    private async ValueTask<byte[]?> ReadStartupPacketAsync()
    {
        while (true)
        {
            ReadResult r = await _reader.ReadAsync(_connectionToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = r.Buffer;
            if (buffer.Length >= 4)
            {
                buffer.Slice(0, 4).CopyTo(_header);
                int length = BinaryPrimitives.ReadInt32BigEndian(_header);
                if (length < 8 || length > MaxStartupPacket)
                {
                    // PostgreSQL closes without a reply: the peer may not even speak protocol 3.
                    _reader.AdvanceTo(buffer.Start);
                    return null;
                }

                if (buffer.Length >= length)
                {
                    byte[] body = buffer.Slice(4, length - 4).ToArray();
                    _reader.AdvanceTo(buffer.GetPosition(length));
                    return body;
                }
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (r.IsCompleted || r.IsCanceled)
            {
                return null;
            }
        }
    }

    private async ValueTask NegotiateEncryptionAsync(bool ssl)
    {
        bool upgrade = ssl && !_isTls && _info.UpgradeToTls is not null;

        // Bytes sent along with the request would be read as if they came over TLS (CVE-2021-23214): refuse them.
        // Checked before answering: once 'S' is out, the client's ClientHello may arrive at any moment and is legitimate.
        if (upgrade && _reader.TryRead(out ReadResult pending))
        {
            bool extra = !pending.Buffer.IsEmpty;
            _reader.AdvanceTo(pending.Buffer.Start);
            if (extra)
            {
                throw new IOException("received unencrypted data after SSL request");
            }
        }

        Span<byte> answer = _writer.GetSpan(1);
        answer[0] = upgrade ? (byte)'S' : (byte)'N';
        _writer.Advance(1);
        await FlushAsync().ConfigureAwait(false);
        if (!upgrade)
        {
            return;
        }

        IDuplexPipe secure = await _info.UpgradeToTls!(_connectionToken).ConfigureAwait(false);
        _reader = secure.Input;
        _writer.Replace(secure.Output);
        _isTls = true;
    }

    private static Dictionary<string, string> ParseStartupParameters(ReadOnlySpan<byte> body, out List<string> unrecognized)
    {
        unrecognized = [];
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new MessageReader(body);
        try
        {
            while (true)
            {
                string name = reader.ReadCString();
                if (name.Length == 0)
                {
                    break;
                }

                string value = reader.ReadCString();
                if (name.StartsWith("_pq_.", StringComparison.Ordinal))
                {
                    unrecognized.Add(name);
                }
                else
                {
                    parameters[name] = value;
                }
            }

            reader.EnsureEnd();
        }
        catch (PgException)
        {
            throw new PgException(PgSqlState.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte", severity: "FATAL");
        }

        return parameters;
    }

    /// <summary>Reads kdb's switches and <c>-c name=value</c> / <c>--name=value</c> settings out of <c>options</c>.</summary>
    private static PgAuthMethod ParseOptions(Dictionary<string, string> parameters)
    {
        PgAuthMethod method = PgAuthMethod.Scram;
        if (!parameters.TryGetValue("options", out string? options))
        {
            return method;
        }

        string[] tokens = options.Split(OptionsSeparators, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < tokens.Length; i++)
        {
            string t = tokens[i];
            string? setting = null;
            if (t == "-c" && i + 1 < tokens.Length)
            {
                setting = tokens[++i];
            }
            else if (t.StartsWith("-c", StringComparison.Ordinal))
            {
                setting = t[2..];
            }
            else if (t.StartsWith("--", StringComparison.Ordinal))
            {
                setting = t[2..];
            }

            int eq = setting?.IndexOf('=', StringComparison.Ordinal) ?? -1;
            if (setting is null || eq <= 0)
            {
                continue;
            }

            string name = setting[..eq];
            string value = setting[(eq + 1)..];
            if (name == "kdb:jwt" && IsTrue(value))
            {
                method = PgAuthMethod.DataToken;
            }
            else if (name == "kdb:proxy" && IsTrue(value))
            {
                method = PgAuthMethod.Proxy;
            }
            else
            {
                parameters[name] = value;
            }
        }

        return method;
    }

    private static bool IsTrue(string v) => v is "true" or "on" or "1" or "yes";

    private async ValueTask AuthenticateAsync(PgAuthMethod method, string database, string user)
    {
        PgException failed = new(PgSqlState.InvalidPassword, $"password authentication failed for user \"{user}\"", severity: "FATAL");
        if (method != PgAuthMethod.Scram)
        {
            if (!_isTls && !(_options.AllowTokenPasswordsWithoutTlsOnLoopback && _info.IsLoopback))
            {
                // Refused before the password is sent, so a token never crosses the wire in clear.
                throw new PgException(PgSqlState.InvalidPassword, failed.Message, hint: "Token passwords require an SSL connection (sslmode=require).", severity: "FATAL");
            }

            _writer.Write(new AuthenticationMessage(AuthenticationCode.CleartextPassword));
            await FlushAsync().ConfigureAwait(false);
            string password = await ReadPasswordMessageAsync(static (ref MessageReader r) =>
            {
                string p = r.ReadCString();
                r.EnsureEnd();
                return p;
            }).ConfigureAwait(false);
            if (!await _authenticator.ValidateTokenAsync(method, password, database, user, _connectionToken).ConfigureAwait(false))
            {
                throw failed;
            }

            _writer.Write(new AuthenticationMessage(AuthenticationCode.Ok));
            return;
        }

        string? text = await _authenticator.GetScramVerifierAsync(database, user, _connectionToken).ConfigureAwait(false);
        bool real = ScramSha256Verifier.TryParse(text, out ScramSha256Verifier? verifier);
        if (!real)
        {
            verifier = ScramSha256Verifier.CreateFake(_options.ServerSecret, database, user);
        }

        var exchange = new ScramServerExchange(verifier!);
        _writer.Write(new AuthenticationSaslMessage());
        await FlushAsync().ConfigureAwait(false);
        byte[] clientFirst = await ReadPasswordMessageAsync(static (ref MessageReader r) =>
        {
            string mechanism = r.ReadCString();
            if (mechanism != "SCRAM-SHA-256")
            {
                throw new PgException(PgSqlState.ProtocolViolation, "client selected an invalid SASL authentication mechanism", severity: "FATAL");
            }

            int length = r.ReadInt32();
            byte[] data = r.ReadBytes(length).ToArray();
            r.EnsureEnd();
            return data;
        }).ConfigureAwait(false);
        string serverFirst = exchange.HandleClientFirst(clientFirst)
            ?? throw new PgException(PgSqlState.ProtocolViolation, "malformed SCRAM message", severity: "FATAL");
        _writer.Write(new AuthenticationMessage(AuthenticationCode.SaslContinue, System.Text.Encoding.UTF8.GetBytes(serverFirst)));
        await FlushAsync().ConfigureAwait(false);
        byte[] clientFinal = await ReadPasswordMessageAsync(static (ref MessageReader r) => r.ReadBytes(r.Remaining).ToArray()).ConfigureAwait(false);
        string? serverFinal = exchange.HandleClientFinal(clientFinal);
        if (serverFinal is null || !real)
        {
            throw failed;
        }

        _writer.Write(new AuthenticationMessage(AuthenticationCode.SaslFinal, System.Text.Encoding.UTF8.GetBytes(serverFinal)));
        _writer.Write(new AuthenticationMessage(AuthenticationCode.Ok));
    }

    private delegate T BodyParser<T>(ref MessageReader reader);

    private async ValueTask<T> ReadPasswordMessageAsync<T>(BodyParser<T> parse)
    {
        if (!await ReadMessageAsync(idle: false).ConfigureAwait(false))
        {
            throw new IOException("client closed the connection during authentication");
        }

        if (_code != (byte)FrontendMessageCode.PasswordMessage)
        {
            throw new PgException(PgSqlState.ProtocolViolation, $"expected password response, got message type {_code}", severity: "FATAL");
        }

        var reader = new MessageReader(_message.WrittenSpan);
        try
        {
            return parse(ref reader);
        }
        catch (PgException e) when (e.Severity != "FATAL")
        {
            throw new PgException(e.SqlState, e.Message, severity: "FATAL");
        }
    }

    private async ValueTask OpenSessionAsync(PgStartup startup)
    {
        _session = await _sessions.OpenAsync(startup, _connectionToken).ConfigureAwait(false);
        _processId = _handler.Register(this);
        _secretKey = RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue);

        var status = new List<KeyValuePair<string, string>>
        {
            new("application_name", startup.Parameters.TryGetValue("application_name", out string? app) ? app : string.Empty),
            new("client_encoding", "UTF8"),
            new("DateStyle", "ISO, MDY"),
            new("default_transaction_read_only", "off"),
            new("in_hot_standby", "off"),
            new("integer_datetimes", "on"),
            new("IntervalStyle", "postgres"),
            new("is_superuser", "off"),
            new("server_encoding", "UTF8"),
            new("server_version", _options.ServerVersion),
            new("server_version_num", _options.ServerVersionNum.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("session_authorization", startup.User),
            new("standard_conforming_strings", "on"),
            new("TimeZone", "UTC"),
        };
        foreach (KeyValuePair<string, string> overriding in _session.InitialParameterStatus)
        {
            int at = status.FindIndex(p => p.Key == overriding.Key);
            if (at >= 0)
            {
                status[at] = overriding;
            }
            else
            {
                status.Add(overriding);
            }
        }

        foreach (KeyValuePair<string, string> p in status)
        {
            _writer.Write(new ParameterStatusMessage(p.Key, p.Value));
        }

        _writer.Write(new BackendKeyDataMessage(_processId, _secretKey));
        await SendReadyAsync().ConfigureAwait(false);
    }
}
