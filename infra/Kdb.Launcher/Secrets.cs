using System.Security.Cryptography;
using System.Text;

namespace Kdb.Launcher;

/// <summary>
/// Secrets of the local cloud, generated once into <c>.kdb/secrets.env</c> (mode 0600) and kept across
/// <c>down</c>/<c>up</c>: the PostgreSQL superuser password and each service client's secret (DESIGN:
/// the control plane ensures the clients exist; each service is handed only its own).
/// </summary>
internal sealed class Secrets
{
    public static readonly string[] Keys =
    [
        "KDB_POSTGRES_PASSWORD",
        "KDB_CLIENT_PROXY_SECRET",
        "KDB_CLIENT_NODE_SECRET",
        "KDB_CLIENT_PROVISIONING_SECRET",
        "KDB_CLIENT_OPERATOR_SECRET",
        "KDB_DATAPROTECTION_SECRET",
        "KDB_DEMO_PASSWORD",
    ];

    private readonly Dictionary<string, string> _values;

    private Secrets(Dictionary<string, string> values) => _values = values;

    public string this[string key] => _values[key];

    public static Secrets LoadOrCreate(string path)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (File.Exists(path))
        {
            foreach (var raw in File.ReadAllLines(path))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                {
                    continue;
                }

                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new InvalidDataException($"{path}: malformed line '{line}' (expected KEY=value).");
                }

                values[line[..eq]] = line[(eq + 1)..];
            }
        }

        var changed = false;
        foreach (var key in Keys)
        {
            if (!values.ContainsKey(key))
            {
                // URL-safe and shell-safe: the values end up in env files and connection strings.
                values[key] = Base64Url(RandomNumberGenerator.GetBytes(32));
                changed = true;
            }
        }

        if (changed)
        {
            var sb = new StringBuilder("# Generated once by ./kdb up. Keep private; delete to rotate (with .kdb/postgres).\n");
            foreach (var (key, value) in values)
            {
                sb.Append(key).Append('=').Append(value).Append('\n');
            }

            FileUtil.WriteAtomic(path, sb.ToString(), privateFile: true);
        }

        return new Secrets(values);
    }

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
