using System.Globalization;
using System.Text;
using Kdb.PgWire.Session;

namespace Kdb.Node.Sql;

/// <summary>The options of one COPY: text or CSV, delimiter, NULL string, header, quote and escape characters.</summary>
internal sealed record CopyFormat(bool Csv, char Delimiter, string Null, bool Header, char Quote, char Escape, bool Binary = false)
{
    /// <summary>Reads COPY's options (names lowercase; both the parenthesized and the pre-9.0 syntax), with PostgreSQL's defaults.</summary>
    public static CopyFormat From(IReadOnlyDictionary<string, string> options, bool from)
    {
        var format = options.TryGetValue("format", out var f) ? f.ToLowerInvariant() : "text";
        if (IsOn(options, "csv"))
        {
            format = "csv";
        }

        if (IsOn(options, "binary"))
        {
            format = "binary";
        }

        if (format == "binary")
        {
            // PostgreSQL's option checks for binary mode.
            foreach (var option in (string[])["delimiter", "null", "header", "quote", "escape"])
            {
                if (options.ContainsKey(option))
                {
                    throw new PgException("42601", $"cannot specify {option.ToUpperInvariant()} in BINARY mode");
                }
            }

            return new CopyFormat(false, '\t', string.Empty, false, '"', '"', Binary: true);
        }

        if (format is not ("text" or "csv"))
        {
            throw new PgException("22023", $"COPY format \"{format}\" not recognized");
        }

        var csv = format == "csv";
        var delimiter = Single(options, "delimiter", csv ? ',' : '\t');
        var quote = Single(options, "quote", '"');
        var escape = Single(options, "escape", quote);
        if (!csv && (options.ContainsKey("quote") || options.ContainsKey("escape")))
        {
            throw new PgException("0A000", "COPY quote and escape are available only in CSV mode");
        }

        if (delimiter is '\r' or '\n' || (!csv && delimiter == '\\') || (csv && delimiter == quote))
        {
            throw new PgException("22023", "COPY delimiter cannot be newline, carriage return, backslash (text) or the quote character (CSV)");
        }

        var nullText = options.TryGetValue("null", out var n) ? n : csv ? string.Empty : "\\N";
        var header = options.TryGetValue("header", out var h) && (h.Equals("match", StringComparison.OrdinalIgnoreCase) || IsTrue(h));
        _ = from;
        return new CopyFormat(csv, delimiter, nullText, header, quote, escape);
    }

    private static bool IsOn(IReadOnlyDictionary<string, string> options, string name) => options.TryGetValue(name, out var v) && IsTrue(v);

    private static bool IsTrue(string value) => value.ToLowerInvariant() switch
    {
        "true" or "on" or "1" or "yes" => true,
        "false" or "off" or "0" or "no" => false,
        _ => throw new PgException("22023", $"invalid boolean value in COPY option: \"{value}\""),
    };

    private static char Single(IReadOnlyDictionary<string, string> options, string name, char fallback)
    {
        if (!options.TryGetValue(name, out var value))
        {
            return fallback;
        }

        return value.Length == 1 ? value[0] : throw new PgException("22023", $"COPY {name} must be a single one-byte character");
    }

    /// <summary>Appends a non-NULL field, escaped (text) or quoted when needed (CSV) as PostgreSQL's COPY TO writes it.</summary>
    public void AppendField(StringBuilder sb, string value)
    {
        if (Csv)
        {
            var needsQuote = value.Length == 0 ? Null.Length == 0 : value == Null || value == "\\.";
            foreach (var c in value)
            {
                if (c == Delimiter || c == Quote || c is '\r' or '\n' || c == Escape)
                {
                    needsQuote = true;
                    break;
                }
            }

            if (!needsQuote)
            {
                sb.Append(value);
                return;
            }

            sb.Append(Quote);
            foreach (var c in value)
            {
                if (c == Quote || c == Escape)
                {
                    sb.Append(Escape);
                }

                sb.Append(c);
            }

            sb.Append(Quote);
            return;
        }

        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\v': sb.Append("\\v"); break;
                default:
                    if (c == Delimiter)
                    {
                        sb.Append('\\');
                    }

                    sb.Append(c);
                    break;
            }
        }
    }
}

/// <summary>
/// Splits COPY FROM data into rows of text fields. Data arrives in arbitrary chunks: bytes are kept until a
/// record ends (a newline outside CSV quotes). Scanning bytes is safe for UTF-8 because no byte of a multi-byte
/// character equals an ASCII delimiter, quote or newline.
/// </summary>
internal sealed class CopyParser(CopyFormat format, int columns)
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);
    private readonly List<string?> _fields = new(columns);
    private byte[] _pending = new byte[4096];
    private int _length;
    private int _scan;
    private bool _inQuote;
    private bool _headerSkipped;
    private bool _ended;
    private long _line;

    /// <summary>Consumes a chunk, calling <paramref name="addRow"/> for every complete record.</summary>
    public void Feed(ReadOnlySpan<byte> chunk, Action<IReadOnlyList<string?>> addRow)
    {
        if (_ended)
        {
            return;
        }

        if (_length + chunk.Length > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _length + chunk.Length));
        }

        chunk.CopyTo(_pending.AsSpan(_length));
        _length += chunk.Length;
        var start = 0;
        var quote = (byte)format.Quote;
        var escape = (byte)format.Escape;
        for (var i = _scan; i < _length && !_ended; i++)
        {
            var b = _pending[i];
            if (format.Csv)
            {
                if (_inQuote && escape != quote && b == escape && i + 1 < _length)
                {
                    i++;
                    continue;
                }

                if (b == quote)
                {
                    _inQuote = !_inQuote;
                    continue;
                }
            }

            if (b == (byte)'\n' && !_inQuote)
            {
                Record(_pending.AsSpan(start, i - start), addRow);
                start = i + 1;
            }
        }

        // Keep the unfinished record; rescan only its new bytes next time (quote state carries over).
        _pending.AsSpan(start, _length - start).CopyTo(_pending);
        _length -= start;
        _scan = _length;
    }

    /// <summary>Ends the data: a last record without a final newline still counts.</summary>
    public void Finish(Action<IReadOnlyList<string?>> addRow)
    {
        if (_ended || _length == 0)
        {
            return;
        }

        if (_inQuote)
        {
            throw new PgException("22P04", "unterminated CSV quoted field", $"COPY line {_line + 1}");
        }

        Record(_pending.AsSpan(0, _length), addRow);
        _length = 0;
    }

    private void Record(ReadOnlySpan<byte> bytes, Action<IReadOnlyList<string?>> addRow)
    {
        _line++;
        if (!bytes.IsEmpty && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
        }

        string line;
        try
        {
            line = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new PgException("22021", "invalid byte sequence for encoding \"UTF8\"", $"COPY line {_line}");
        }

        if (line == "\\.")
        {
            _ended = true;
            return;
        }

        if (format.Header && !_headerSkipped)
        {
            _headerSkipped = true;
            return;
        }

        _fields.Clear();
        if (format.Csv)
        {
            SplitCsv(line);
        }
        else
        {
            SplitText(line);
        }

        addRow(_fields);
    }

    private void SplitText(string line)
    {
        var start = 0;
        for (var i = 0; i <= line.Length; i++)
        {
            if (i < line.Length && line[i] == '\\')
            {
                i++;
                continue;
            }

            if (i == line.Length || line[i] == format.Delimiter)
            {
                var raw = line.AsSpan(start, Math.Min(i, line.Length) - start);
                _fields.Add(raw.SequenceEqual(format.Null) ? null : Unescape(raw));
                start = i + 1;
            }
        }
    }

    private string Unescape(ReadOnlySpan<char> raw)
    {
        if (!raw.Contains('\\'))
        {
            return raw.ToString();
        }

        var sb = new StringBuilder(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c != '\\' || i + 1 >= raw.Length)
            {
                sb.Append(c);
                continue;
            }

            var e = raw[++i];
            switch (e)
            {
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case >= '0' and <= '7':
                    var octal = 0;
                    var digits = 0;
                    while (digits < 3 && i < raw.Length && raw[i] is >= '0' and <= '7')
                    {
                        octal = (octal * 8) + (raw[i++] - '0');
                        digits++;
                    }

                    i--;
                    sb.Append((char)octal);
                    break;
                case 'x' when i + 1 < raw.Length && char.IsAsciiHexDigit(raw[i + 1]):
                    var hexLength = i + 2 < raw.Length && char.IsAsciiHexDigit(raw[i + 2]) ? 2 : 1;
                    sb.Append((char)int.Parse(raw.Slice(i + 1, hexLength), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += hexLength;
                    break;
                default:
                    sb.Append(e);
                    break;
            }
        }

        return sb.ToString();
    }

    private void SplitCsv(string line)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (true)
        {
            sb.Clear();
            var quoted = false;
            var rawStart = i;
            while (i < line.Length && line[i] != format.Delimiter)
            {
                var c = line[i];
                if (c == format.Quote)
                {
                    quoted = true;
                    i++;
                    while (true)
                    {
                        if (i >= line.Length)
                        {
                            throw new PgException("22P04", "unterminated CSV quoted field", $"COPY line {_line}");
                        }

                        var q = line[i];
                        if (q == format.Escape && i + 1 < line.Length && (line[i + 1] == format.Quote || line[i + 1] == format.Escape) && (format.Escape != format.Quote || line[i + 1] == format.Quote))
                        {
                            sb.Append(line[i + 1]);
                            i += 2;
                            continue;
                        }

                        if (q == format.Quote)
                        {
                            i++;
                            break;
                        }

                        sb.Append(q);
                        i++;
                    }

                    continue;
                }

                sb.Append(c);
                i++;
            }

            var raw = line.AsSpan(rawStart, i - rawStart);
            _fields.Add(!quoted && raw.SequenceEqual(format.Null) ? null : sb.ToString());
            if (i >= line.Length)
            {
                return;
            }

            i++;
        }
    }
}
