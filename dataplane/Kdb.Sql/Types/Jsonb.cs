using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kdb.Sql.Types;

/// <summary>
/// jsonb as text in PostgreSQL's canonical output form: object keys sorted (shorter first, then bytewise),
/// duplicate keys resolved to the last, ", " and ": " separators. Kept as text so that equality and
/// ordering of values are those of the canonical form.
/// </summary>
internal static class Jsonb
{
    private const int MaxDepth = 256;

    public static string Normalize(string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            throw new SqlException(SqlState.InvalidJsonText, "invalid input syntax for type json", detail: e.Message);
        }

        using (document)
        {
            var sb = new StringBuilder(text.Length);
            Write(document.RootElement, sb);
            return sb.ToString();
        }
    }

    public static string Validate(string text)
    {
        _ = Normalize(text);
        return text;
    }

    public static void Write(JsonElement element, StringBuilder sb)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var members = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    members[property.Name] = property.Value;
                }

                var keys = new List<string>(members.Keys);
                keys.Sort(CompareKeys);
                sb.Append('{');
                for (var i = 0; i < keys.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(", ");
                    }

                    WriteString(keys[i], sb);
                    sb.Append(": ");
                    Write(members[keys[i]], sb);
                }

                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }

                    first = false;
                    Write(item, sb);
                }

                sb.Append(']');
                break;
            case JsonValueKind.String:
                WriteString(element.GetString()!, sb);
                break;
            case JsonValueKind.Number:
                var raw = element.GetRawText();
                if (raw.Contains('e', StringComparison.OrdinalIgnoreCase) && decimal.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                {
                    raw = d.ToString(CultureInfo.InvariantCulture);
                }

                sb.Append(raw);
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            default:
                sb.Append("null");
                break;
        }
    }

    private static int CompareKeys(string a, string b)
    {
        var la = Encoding.UTF8.GetByteCount(a);
        var lb = Encoding.UTF8.GetByteCount(b);
        return la != lb ? la.CompareTo(lb) : string.CompareOrdinal(a, b);
    }

    public static void WriteString(string value, StringBuilder sb)
    {
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }

    /// <summary><c>json -&gt; key</c> (object) or <c>-&gt; index</c> (array); null when absent.</summary>
    public static string? Get(string json, in Value selector, bool asText)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        JsonElement found;
        if (selector.Kind == ValueKind.Int)
        {
            if (root.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var index = selector.AsInt;
            var length = root.GetArrayLength();
            if (index < 0)
            {
                index += length;
            }

            if (index < 0 || index >= length)
            {
                return null;
            }

            found = root[(int)index];
        }
        else
        {
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(selector.AsText, out found))
            {
                return null;
            }

            // Duplicate keys: the last one wins, as in jsonb.
            foreach (var property in root.EnumerateObject())
            {
                if (property.NameEquals(selector.AsText))
                {
                    found = property.Value;
                }
            }
        }

        if (asText)
        {
            return found.ValueKind switch
            {
                JsonValueKind.String => found.GetString(),
                JsonValueKind.Null => null,
                _ => Render(found),
            };
        }

        return Render(found);
    }

    /// <summary><c>a @&gt; b</c>: every key/element of b is in a.</summary>
    public static bool Contains(string container, string contained)
    {
        using var a = JsonDocument.Parse(container);
        using var b = JsonDocument.Parse(contained);
        return Contains(a.RootElement, b.RootElement);
    }

    private static bool Contains(JsonElement a, JsonElement b)
    {
        if (a.ValueKind != b.ValueKind)
        {
            return a.ValueKind == JsonValueKind.Array && b.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)
                && ArrayHas(a, b);
        }

        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in b.EnumerateObject())
                {
                    if (!a.TryGetProperty(property.Name, out var value) || !Contains(value, property.Value))
                    {
                        return false;
                    }
                }

                return true;
            case JsonValueKind.Array:
                foreach (var item in b.EnumerateArray())
                {
                    if (!ArrayHas(a, item))
                    {
                        return false;
                    }
                }

                return true;
            default:
                return Render(a) == Render(b);
        }
    }

    private static bool ArrayHas(JsonElement array, JsonElement item)
    {
        foreach (var candidate in array.EnumerateArray())
        {
            if (Contains(candidate, item))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary><c>json ? key</c>: a top-level key or string array element.</summary>
    public static bool HasKey(string json, string key)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.ValueKind == JsonValueKind.Object)
        {
            return root.TryGetProperty(key, out _);
        }

        if (root.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in root.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String && item.GetString() == key)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static string Render(JsonElement element)
    {
        var sb = new StringBuilder();
        Write(element, sb);
        return sb.ToString();
    }
}
