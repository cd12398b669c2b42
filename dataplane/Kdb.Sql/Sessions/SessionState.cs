using System.Globalization;

namespace Kdb.Sql.Sessions;

/// <summary>The kind of database role a session runs as (DESIGN: owner, readwrite, readonly).</summary>
public enum SqlRoleKind : byte
{
    /// <summary>DDL and DML.</summary>
    Owner = 0,

    /// <summary>DML, no DDL.</summary>
    ReadWrite = 1,

    /// <summary>Reads only.</summary>
    ReadOnly = 2,
}

/// <summary>Session settings (SET/SHOW/RESET) and identity.</summary>
internal sealed class SessionState
{
    private static readonly Dictionary<string, string> Defaults = new(StringComparer.Ordinal)
    {
        ["application_name"] = string.Empty,
        ["client_encoding"] = "UTF8",
        ["server_encoding"] = "UTF8",
        ["datestyle"] = "ISO, MDY",
        ["timezone"] = "UTC",
        ["intervalstyle"] = "postgres",
        ["standard_conforming_strings"] = "on",
        ["search_path"] = "\"$user\", public",
        ["statement_timeout"] = "0",
        ["idle_in_transaction_session_timeout"] = "0",
        ["lock_timeout"] = "0",
        ["default_transaction_isolation"] = "serializable",
        ["transaction_isolation"] = "serializable",
        ["default_transaction_read_only"] = "off",
        ["transaction_read_only"] = "off",
        ["extra_float_digits"] = "1",
        ["server_version"] = "15.0 (kdb)",
        ["server_version_num"] = "150000",
        ["integer_datetimes"] = "on",
        ["max_identifier_length"] = "63",
        ["work_mem"] = "256MB",
        ["bytea_output"] = "hex",
        ["synchronous_commit"] = "on",
        ["client_min_messages"] = "notice",
        ["lc_messages"] = "C",
        ["lc_monetary"] = "C",
        ["lc_numeric"] = "C",
        ["lc_time"] = "C",
        ["row_security"] = "on",
        ["check_function_bodies"] = "on",
        ["xmloption"] = "content",
        ["default_with_oids"] = "off",
        ["is_superuser"] = "off",
        ["max_connections"] = "100",
        ["block_size"] = "8192",
        ["jit"] = "off",
        ["enable_seqscan"] = "on",
        ["geqo"] = "on",
        ["vacuum_cost_delay"] = "0",
        ["maintenance_work_mem"] = "64MB",
        ["random_page_cost"] = "4",
        ["session_replication_role"] = "origin",
        ["escape_string_warning"] = "on",
        ["array_nulls"] = "on",
        ["default_table_access_method"] = "heap",
    };

    private readonly Dictionary<string, string> _values = new(Defaults, StringComparer.Ordinal);

    public SessionState(string user, string database, SqlRoleKind role)
    {
        User = user;
        Database = database;
        Role = role;
        _values["session_authorization"] = user;
    }

    private string? _searchPathText;
    private string[] _searchPath = [];

    public string User { get; }

    public string Database { get; }

    public SqlRoleKind Role { get; }

    /// <summary>A per-process counter-based id shown as pg_backend_pid().</summary>
    public int BackendPid { get; init; }

    /// <summary>Set while a view's query is bound: its names resolve with the search_path the view was created under.</summary>
    internal string[]? ViewSearchPath { get; set; }

    /// <summary>search_path, parsed (cached until it changes).</summary>
    public string[] SearchPath
    {
        get
        {
            if (ViewSearchPath is { } viewPath)
            {
                return viewPath;
            }

            var text = Get("search_path") ?? string.Empty;
            if (!ReferenceEquals(text, _searchPathText))
            {
                _searchPath = Catalog.SchemaPath.Parse(text);
                _searchPathText = text;
            }

            return _searchPath;
        }
    }

    public string? Get(string name) => _values.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;

    public IEnumerable<KeyValuePair<string, string>> All => _values.OrderBy(p => p.Key, StringComparer.Ordinal);

    /// <summary>Sets a setting; unknown names are accepted for forward compatibility with clients (PostgreSQL errors on them, but only with 42704 on typos; kdb accepts custom "x.y" names and known ones).</summary>
    public void Set(string name, string? value)
    {
        var key = name.ToLowerInvariant();
        if (!_values.ContainsKey(key) && !key.Contains('.', StringComparison.Ordinal))
        {
            throw new SqlException(SqlState.UndefinedObject, $"unrecognized configuration parameter \"{name}\"");
        }

        if (key is "server_version" or "server_version_num" or "server_encoding" or "integer_datetimes" or "max_identifier_length" or "block_size" or "is_superuser" or "max_connections")
        {
            throw new SqlException("55P02", $"parameter \"{name}\" cannot be changed");
        }

        if (value is null)
        {
            Reset(key);
            return;
        }

        switch (key)
        {
            case "timezone":
                if (!value.Equals("UTC", StringComparison.OrdinalIgnoreCase) && !value.Equals("GMT", StringComparison.OrdinalIgnoreCase)
                    && !value.Equals("Etc/UTC", StringComparison.OrdinalIgnoreCase) && value != "0" && value != "+00" && value != "Z")
                {
                    throw new SqlException(SqlState.FeatureNotSupported, $"time zone \"{value}\" is not supported: kdb sessions run in UTC");
                }

                value = "UTC";
                break;
            case "client_encoding":
                if (!value.Replace("-", string.Empty, StringComparison.Ordinal).Equals("UTF8", StringComparison.OrdinalIgnoreCase)
                    && !value.Equals("UNICODE", StringComparison.OrdinalIgnoreCase) && !value.Equals("SQL_ASCII", StringComparison.OrdinalIgnoreCase))
                {
                    throw new SqlException(SqlState.FeatureNotSupported, $"client encoding \"{value}\" is not supported: use UTF8");
                }

                value = "UTF8";
                break;
            case "statement_timeout" or "idle_in_transaction_session_timeout" or "lock_timeout":
                _ = ParseMilliseconds(value, name);
                break;
            case "transaction_isolation" or "default_transaction_isolation":
                // A weaker level runs at SERIALIZABLE, as documented: the setting reads back as asked.
                value = value.ToLowerInvariant();
                break;
        }

        _values[key] = value;
    }

    public void Reset(string name)
    {
        var key = name.ToLowerInvariant();
        if (key == "all")
        {
            foreach (var (k, v) in Defaults)
            {
                _values[k] = v;
            }

            _values["session_authorization"] = User;
            return;
        }

        if (Defaults.TryGetValue(key, out var value))
        {
            _values[key] = value;
        }
        else
        {
            _values.Remove(key);
        }
    }

    /// <summary>statement_timeout in milliseconds (0: none).</summary>
    public int StatementTimeoutMs
    {
        get
        {
            // Read by every statement: parse only when the setting's text changed.
            var text = _values["statement_timeout"];
            if (!ReferenceEquals(text, _timeoutText))
            {
                _timeoutMs = ParseMilliseconds(text, "statement_timeout");
                _timeoutText = text;
            }

            return _timeoutMs;
        }
    }

    private static readonly (string Suffix, int Factor)[] Units = [("ms", 1), ("s", 1000), ("min", 60_000), ("h", 3_600_000)];
    private string? _timeoutText;
    private int _timeoutMs;

    public static int ParseMilliseconds(string value, string name)
    {
        var v = value.Trim().Trim('\'').ToLowerInvariant();
        var multiplier = 1;
        foreach (var (suffix, factor) in Units)
        {
            if (v.EndsWith(suffix, StringComparison.Ordinal) && !(suffix == "s" && v.EndsWith("ms", StringComparison.Ordinal)))
            {
                v = v[..^suffix.Length].Trim();
                multiplier = factor;
                break;
            }
        }

        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            throw new SqlException(SqlState.InvalidParameterValue, $"invalid value for parameter \"{name}\": \"{value}\"");
        }

        return checked(n * multiplier);
    }
}
