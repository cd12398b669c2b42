using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Mail;

/// <summary>
/// The default sender: each message becomes an RFC 5322 <c>.eml</c> file in the mail directory, which
/// <c>./kdb mail</c> lists. Written to a temporary name and renamed, so a reader never sees half a message.
/// </summary>
internal sealed class FileMailSender(IOptions<MailOptions> options, TimeProvider time) : IMailSender
{
    public async Task<string> SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var (messageId, text) = EmlFormat.Write(options.Value.From, mail, now);
        var directory = Path.GetFullPath(options.Value.Directory);
        var name = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..12] + ".eml";
        var temp = Path.Combine(directory, "." + name + ".tmp");
        try
        {
            Directory.CreateDirectory(directory);
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, Path.Combine(directory, name));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new MailDeliveryException($"could not write mail into {directory}: {ex.Message}", ex);
        }

        return messageId;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The directory itself is the problem; there is no temporary file to clean up.
        }
    }
}

/// <summary>RFC 5322 text of a plain-text message: CRLF line ends, RFC 2047 for a non-ASCII subject, 8bit UTF-8 body.</summary>
internal static class EmlFormat
{
    public static (string MessageId, string Text) Write(string from, OutgoingMail mail, DateTimeOffset date)
    {
        if (!MailSetup.IsValidAddress(mail.To))
        {
            throw new ArgumentException("the recipient is not a valid address", nameof(mail));
        }

        if (mail.Subject.AsSpan().IndexOfAny('\r', '\n') >= 0 || from.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            // Header injection: a line break would start a header of the caller's choosing.
            throw new ArgumentException("headers are one line each", nameof(mail));
        }

        var domain = from.LastIndexOf('@') is var at and >= 0 ? from[(at + 1)..].TrimEnd('>', ' ') : "kdb.localhost";
        var messageId = $"<{Guid.NewGuid():N}@{domain}>";
        var builder = new StringBuilder();
        builder.Append("Date: ").Append(date.ToUniversalTime().ToString("ddd, dd MMM yyyy HH:mm:ss '+0000'", CultureInfo.InvariantCulture)).Append("\r\n");
        builder.Append("From: ").Append(from).Append("\r\n");
        builder.Append("To: ").Append(mail.To).Append("\r\n");
        builder.Append("Subject: ").Append(EncodeHeader(mail.Subject)).Append("\r\n");
        builder.Append("Message-ID: ").Append(messageId).Append("\r\n");
        builder.Append("MIME-Version: 1.0\r\n");
        builder.Append("Content-Type: text/plain; charset=utf-8\r\n");
        builder.Append("Content-Transfer-Encoding: 8bit\r\n\r\n");
        foreach (var line in mail.Body.ReplaceLineEndings("\n").Split('\n'))
        {
            builder.Append(line).Append("\r\n");
        }

        return (messageId, builder.ToString());
    }

    private static string EncodeHeader(string value)
    {
        foreach (var c in value)
        {
            if (c > 126)
            {
                return "=?utf-8?B?" + Convert.ToBase64String(Encoding.UTF8.GetBytes(value)) + "?=";
            }
        }

        return value;
    }
}
