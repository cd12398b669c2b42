using System.Text;

namespace Kdb.Proxy.Pg;

/// <summary>How the client named its database (for logs and the docs' precedence rules).</summary>
internal enum RoutingSource
{
    Options = 0,
    Sni = 1,
    DatabaseName = 2,
}

/// <summary>
/// A client's startup parameters read for the proxy: the user, the database it routes to, whether the password is a
/// data token, and what is passed on to the node (every other parameter, and the options the proxy does not consume).
/// </summary>
internal sealed class StartupRequest
{
    private static readonly char[] OptionSeparators = [' ', '\t'];

    private StartupRequest(string user, string database, RoutingSource source, bool tokenPassword, string forwardedOptions, List<KeyValuePair<string, string>> forwarded, bool readOnly)
    {
        ReadOnly = readOnly;
        User = user;
        Database = database;
        Source = source;
        TokenPassword = tokenPassword;
        ForwardedOptions = forwardedOptions;
        Forwarded = forwarded;
    }

    public string User { get; }

    public string Database { get; }

    public RoutingSource Source { get; }

    public bool TokenPassword { get; }

    /// <summary>The client's <c>options</c> without the switches the proxy consumed.</summary>
    public string ForwardedOptions { get; }

    /// <summary>Startup parameters passed on to the node (not user, database, options).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Forwarded { get; }

    /// <summary>The client asked for <c>default_transaction_read_only=on</c> (as a parameter or in <c>options</c>).</summary>
    public bool ReadOnly { get; }

    /// <summary>
    /// Reads the parameters. Routing precedence: <c>options=--database=&lt;id&gt;</c> or <c>endpoint=&lt;id&gt;</c>, then the first
    /// label of the SNI host name when it is <c>db-…</c>, then the <c>database</c> parameter (the user name when absent).
    /// Returns null with <paramref name="error"/> when the user is missing.
    /// </summary>
    public static StartupRequest? Parse(Dictionary<string, string> parameters, string? sniHost, out string? error)
    {
        error = null;
        if (!parameters.TryGetValue("user", out string? user) || user.Length == 0)
        {
            error = "no PostgreSQL user name specified in startup packet";
            return null;
        }

        string? fromOptions = null;
        bool token = false;
        bool readOnly = false;
        var kept = new StringBuilder();
        if (parameters.TryGetValue("options", out string? options))
        {
            string[] tokens = options.Split(OptionSeparators, StringSplitOptions.RemoveEmptyEntries);
            for (int i = 0; i < tokens.Length; i++)
            {
                string t = tokens[i];
                string setting = t.StartsWith("--", StringComparison.Ordinal) ? t[2..] : t;
                int eq = setting.IndexOf('=', StringComparison.Ordinal);
                string name = eq > 0 ? setting[..eq] : string.Empty;
                string value = eq > 0 ? setting[(eq + 1)..] : string.Empty;
                if (name is "database" or "endpoint" && value.Length > 0)
                {
                    fromOptions = value;
                    continue;
                }

                if (name == "kdb:jwt")
                {
                    token = value is "true" or "on" or "1" or "yes";
                    continue;
                }

                if (name == "kdb:proxy")
                {
                    // Only the proxy itself may say this to a node.
                    continue;
                }

                if (t == "-c" && i + 1 < tokens.Length)
                {
                    readOnly |= IsReadOnlySetting(tokens[i + 1]);
                    kept.Append(" -c ").Append(tokens[++i]);
                    continue;
                }

                readOnly |= IsReadOnlySetting(t.StartsWith("-c", StringComparison.Ordinal) ? t[2..] : setting);

                kept.Append(' ').Append(t);
            }
        }

        string database;
        RoutingSource source;
        if (fromOptions is not null)
        {
            (database, source) = (fromOptions, RoutingSource.Options);
        }
        else if (FromSni(sniHost) is { } sni)
        {
            (database, source) = (sni, RoutingSource.Sni);
        }
        else
        {
            database = parameters.TryGetValue("database", out string? db) && db.Length > 0 ? db : user;
            source = RoutingSource.DatabaseName;
        }

        var forwarded = new List<KeyValuePair<string, string>>();
        foreach (KeyValuePair<string, string> p in parameters)
        {
            if (p.Key is not ("user" or "database" or "options") && !p.Key.StartsWith("_pq_.", StringComparison.Ordinal))
            {
                forwarded.Add(p);
                readOnly |= p.Key == ReadOnlySetting && IsOn(p.Value);
            }
        }

        return new StartupRequest(user, database, source, token, kept.ToString().Trim(), forwarded, readOnly);
    }

    private const string ReadOnlySetting = "default_transaction_read_only";

    private static bool IsReadOnlySetting(string setting)
    {
        int eq = setting.IndexOf('=', StringComparison.Ordinal);
        return eq > 0 && setting.AsSpan(0, eq).SequenceEqual(ReadOnlySetting) && IsOn(setting[(eq + 1)..]);
    }

    // PostgreSQL's boolean spellings for a setting (case-insensitive, unique prefixes of on/true/yes aside).
    private static bool IsOn(string value) => value.ToLowerInvariant() is "on" or "true" or "yes" or "1" or "t" or "y";

    /// <summary><c>db-abc.kdb.localhost</c> → <c>db_abc</c>; null when the first label is not a database label.</summary>
    internal static string? FromSni(string? host)
    {
        if (string.IsNullOrEmpty(host))
        {
            return null;
        }

        int dot = host.IndexOf('.', StringComparison.Ordinal);
        string label = dot < 0 ? host : host[..dot];
        return label.Length > 3 && label.StartsWith("db-", StringComparison.OrdinalIgnoreCase)
            ? "db_" + label[3..].ToLowerInvariant()
            : null;
    }
}
