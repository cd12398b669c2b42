using System.Net;
using System.Net.Mail;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Mail;

/// <summary>Hands mail to an SMTP relay (<c>Mail:Smtp:Host</c>), with System.Net.Mail's client.</summary>
internal sealed class SmtpMailSender(IOptions<MailOptions> options) : IMailSender
{
    public async Task<string> SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (!MailSetup.IsValidAddress(mail.To) || mail.Subject.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new ArgumentException("the recipient or subject is not valid in a header", nameof(mail));
        }

        var messageId = $"<{Guid.NewGuid():N}@{new MailAddress(MailAddressOf(o.From)).Host}>";
        using var message = new MailMessage(new MailAddress(MailAddressOf(o.From), DisplayNameOf(o.From)), new MailAddress(mail.To))
        {
            Subject = mail.Subject,
            Body = mail.Body,
            BodyEncoding = System.Text.Encoding.UTF8,
            SubjectEncoding = System.Text.Encoding.UTF8,
        };
        message.Headers.Add("Message-ID", messageId);
        using var client = new SmtpClient(o.Smtp.Host, o.Smtp.Port) { EnableSsl = o.Smtp.EnableSsl, DeliveryMethod = SmtpDeliveryMethod.Network };
        if (!string.IsNullOrEmpty(o.Smtp.Username))
        {
            client.Credentials = new NetworkCredential(o.Smtp.Username, o.Smtp.Password);
        }

        try
        {
            await client.SendMailAsync(message, cancellationToken);
        }
        catch (Exception ex) when (ex is SmtpException or IOException or InvalidOperationException)
        {
            throw new MailDeliveryException($"the SMTP server {o.Smtp.Host}:{o.Smtp.Port} did not take the message: {ex.Message}", ex);
        }

        return messageId;
    }

    private static string MailAddressOf(string from)
    {
        var open = from.LastIndexOf('<');
        return open >= 0 ? from[(open + 1)..].TrimEnd('>', ' ') : from.Trim();
    }

    private static string? DisplayNameOf(string from)
    {
        var open = from.LastIndexOf('<');
        return open > 0 ? from[..open].Trim().Trim('"') : null;
    }
}
