using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary>
/// <c>./kdb mail</c>: the mail the local control plane "sent" (invitations, password resets), which it writes as
/// <c>.eml</c> files into <c>.kdb/mail/</c>; newest first, with date, recipient, subject and the link in the body.
/// </summary>
internal sealed partial class MailCommand(KdbPaths paths, IAnsiConsole console)
{
    public sealed record MailItem(DateTimeOffset Date, string To, string Subject, string? Link, string File);

    public Task<int> RunAsync(int limit, CancellationToken cancellationToken)
    {
        var writer = console.Profile.Out.Writer;
        var items = List(paths.Mail, cancellationToken);
        if (items.Count == 0)
        {
            writer.WriteLine($"No mail in {paths.Mail}.");
            return Task.FromResult(0);
        }

        foreach (var item in limit > 0 ? items.Take(limit) : items)
        {
            writer.WriteLine($"{item.Date.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z  {item.To}  {item.Subject}");
            writer.WriteLine("    " + (item.Link ?? "(no link)"));
        }

        return Task.FromResult(0);
    }

    /// <summary>Every readable message of <paramref name="directory"/>, newest first; a file that is not a message is skipped.</summary>
    public static IReadOnlyList<MailItem> List(string directory, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var items = new List<MailItem>();
        foreach (var file in Directory.EnumerateFiles(directory, "*.eml"))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Parse(file) is { } item)
            {
                items.Add(item);
            }
        }

        // Newest first; the file name (which starts with the time, in milliseconds) breaks ties within a second.
        return [.. items.OrderByDescending(i => i.Date).ThenByDescending(i => Path.GetFileName(i.File), StringComparer.Ordinal)];
    }

    internal static MailItem? Parse(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (IOException)
        {
            return null;
        }

        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (split < 0)
        {
            return null;
        }

        // RFC 5322 headers; a line starting with white space continues the previous one (folding).
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string? last = null;
        foreach (var line in text[..split].Split("\r\n"))
        {
            if (line.Length > 0 && (line[0] == ' ' || line[0] == '\t') && last is not null)
            {
                headers[last] += " " + line.Trim();
            }
            else if (line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
            {
                last = line[..colon].Trim();
                headers[last] = line[(colon + 1)..].Trim();
            }
        }

        var date = headers.TryGetValue("Date", out var d) && DateTimeOffset.TryParse(d.Replace("+0000", "+00:00", StringComparison.Ordinal), CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces, out var parsed)
            ? parsed
            : new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero);
        var link = LinkPattern().Match(text[(split + 4)..]);
        return new MailItem(date, headers.GetValueOrDefault("To", "?"), DecodeWords(headers.GetValueOrDefault("Subject", string.Empty)), link.Success ? link.Value : null, file);
    }

    /// <summary>RFC 2047 encoded words (<c>=?utf-8?B?…?=</c>, <c>=?utf-8?Q?…?=</c>) back into text.</summary>
    private static string DecodeWords(string value) => EncodedWord().Replace(value, m =>
    {
        try
        {
            var encoding = Encoding.GetEncoding(m.Groups[1].Value);
            var payload = m.Groups[3].Value;
            return m.Groups[2].Value.ToUpperInvariant() == "B"
                ? encoding.GetString(Convert.FromBase64String(payload))
                : encoding.GetString(QDecode(payload.Replace('_', ' ')));
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            return m.Value;
        }
    });

    private static byte[] QDecode(string payload)
    {
        var bytes = new List<byte>(payload.Length);
        for (var i = 0; i < payload.Length; i++)
        {
            if (payload[i] == '=' && i + 2 < payload.Length && byte.TryParse(payload.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.Add((byte)payload[i]);
            }
        }

        return [.. bytes];
    }

    [GeneratedRegex(@"https?://[^\s<>""]+")]
    private static partial Regex LinkPattern();

    [GeneratedRegex(@"=\?([^?]+)\?([bBqQ])\?([^?]*)\?=")]
    private static partial Regex EncodedWord();
}
