using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Reads a usage batch (a JSON array of DESIGN's usage records) straight from the request body with a
/// <see cref="Utf8JsonReader"/> over the buffered bytes. The general serializer spent more time on a
/// 5,000-record batch (a record type with a 12-argument constructor, read with continuations) than storing
/// it did. Accepts what the serializer's web defaults accepted: property names in any case, unknown properties
/// ignored, numbers also as strings, absent counters as zero.
/// </summary>
internal static class UsageBatchReader
{
    private static readonly byte[][] Names =
    [
        "sequence"u8.ToArray(), "rowsRead"u8.ToArray(), "rowsWritten"u8.ToArray(), "bytesRead"u8.ToArray(),
        "bytesWritten"u8.ToArray(), "storageBytes"u8.ToArray(), "cpuMs"u8.ToArray(), "egressBytes"u8.ToArray(),
        "connections"u8.ToArray(), "source"u8.ToArray(), "databaseId"u8.ToArray(), "hourStart"u8.ToArray(),
    ];

    /// <summary>The records, or an error for the client: malformed JSON, not an array of objects, or too many.</summary>
    public static async Task<(UsageEndpoints.UsageRecord[]? Records, string? Error)> ReadAsync(PipeReader body, int maxRecords, CancellationToken ct)
    {
        while (true)
        {
            var result = await body.ReadAsync(ct);
            if (result.IsCompleted || result.IsCanceled)
            {
                try
                {
                    return Parse(result.Buffer, maxRecords);
                }
                finally
                {
                    body.AdvanceTo(result.Buffer.End);
                }
            }

            // Nothing consumed yet: ask for more until the whole body is buffered (Kestrel caps its size).
            body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Parses a complete batch.</summary>
    public static (UsageEndpoints.UsageRecord[]? Records, string? Error) Parse(ReadOnlySequence<byte> json, int maxRecords)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            {
                return (null, "the body is a JSON array of usage records");
            }

            var records = new List<UsageEndpoints.UsageRecord>();
            string? lastSource = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return (null, $"records[{records.Count}] is not an object");
                }

                if (records.Count == maxRecords)
                {
                    return (null, $"send 1 to {maxRecords} records");
                }

                if (ReadRecord(ref reader, ref lastSource) is not { } record)
                {
                    return (null, $"records[{records.Count}] has a field of the wrong type");
                }

                records.Add(record);
            }

            if (reader.TokenType != JsonTokenType.EndArray || reader.Read())
            {
                return (null, "the body is a JSON array of usage records");
            }

            return (records.ToArray(), null);
        }
        catch (JsonException ex)
        {
            return (null, "the body is not valid JSON: " + ex.Message);
        }
        catch (InvalidOperationException)
        {
            // A string that is not valid UTF-8 (the reader checks it when the text is read).
            return (null, "the body is not valid UTF-8 JSON");
        }
    }

    private static UsageEndpoints.UsageRecord? ReadRecord(ref Utf8JsonReader reader, ref string? lastSource)
    {
        string? source = null;
        string? databaseId = null;
        DateTimeOffset hourStart = default;
        Span<long> counters = stackalloc long[(int)Fields.Source];
        counters.Clear();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = Field(ref reader);
            reader.Read();
            switch (field)
            {
                case Fields.Source:
                    if (!ReadString(ref reader, ref lastSource, out source))
                    {
                        return null;
                    }

                    break;
                case Fields.DatabaseId:
                    string? none = null;
                    if (!ReadString(ref reader, ref none, out databaseId))
                    {
                        return null;
                    }

                    break;
                case Fields.HourStart:
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        break;
                    }

                    if (reader.TokenType != JsonTokenType.String || !reader.TryGetDateTimeOffset(out hourStart))
                    {
                        return null;
                    }

                    break;
                case Fields.Unknown:
                    reader.Skip();
                    break;
                default:
                    if (!ReadInt64(ref reader, out counters[(int)field]))
                    {
                        return null;
                    }

                    break;
            }
        }

        return new UsageEndpoints.UsageRecord(
            source,
            counters[(int)Fields.Sequence],
            databaseId,
            hourStart,
            counters[(int)Fields.RowsRead],
            counters[(int)Fields.RowsWritten],
            counters[(int)Fields.BytesRead],
            counters[(int)Fields.BytesWritten],
            counters[(int)Fields.StorageBytes],
            counters[(int)Fields.CpuMs],
            counters[(int)Fields.EgressBytes],
            counters[(int)Fields.Connections]);
    }

    /// <summary>A string or null; a source equal to the previous record's reuses its string (a batch has few).</summary>
    private static bool ReadString(ref Utf8JsonReader reader, ref string? previous, out string? value)
    {
        value = null;
        if (reader.TokenType == JsonTokenType.Null)
        {
            return true;
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        if (previous is not null && reader.ValueTextEquals(previous))
        {
            value = previous;
            return true;
        }

        value = previous = reader.GetString();
        return true;
    }

    private static bool ReadInt64(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                return reader.TryGetInt64(out value);
            case JsonTokenType.String when !reader.HasValueSequence && !reader.ValueIsEscaped:
                return Utf8Parser.TryParse(reader.ValueSpan, out value, out var consumed) && consumed == reader.ValueSpan.Length;
            case JsonTokenType.String:
                return long.TryParse(reader.GetString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out value);
            case JsonTokenType.Null:
                return true;
            default:
                return false;
        }
    }

    private static Fields Field(ref Utf8JsonReader reader)
    {
        // Names are short: copy (unescaped) into a stack buffer and compare ignoring ASCII case.
        Span<byte> name = stackalloc byte[32];
        int length;
        if (reader.HasValueSequence || reader.ValueIsEscaped)
        {
            if (reader.ValueIsEscaped)
            {
                var text = reader.GetString()!;
                if (Encoding.UTF8.GetByteCount(text) > name.Length)
                {
                    return Fields.Unknown;
                }

                length = Encoding.UTF8.GetBytes(text, name);
            }
            else
            {
                if (reader.ValueSequence.Length > name.Length)
                {
                    return Fields.Unknown;
                }

                reader.ValueSequence.CopyTo(name);
                length = (int)reader.ValueSequence.Length;
            }
        }
        else
        {
            if (reader.ValueSpan.Length > name.Length)
            {
                return Fields.Unknown;
            }

            reader.ValueSpan.CopyTo(name);
            length = reader.ValueSpan.Length;
        }

        var n = name[..length];
        for (var i = 0; i < Names.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(n, Names[i]))
            {
                return (Fields)i;
            }
        }

        return Fields.Unknown;
    }

    /// <summary>Record fields; the counters come first so that their value indexes the counter array.</summary>
    private enum Fields
    {
        Sequence,
        RowsRead,
        RowsWritten,
        BytesRead,
        BytesWritten,
        StorageBytes,
        CpuMs,
        EgressBytes,
        Connections,
        Source,
        DatabaseId,
        HourStart,
        Unknown,
    }
}
