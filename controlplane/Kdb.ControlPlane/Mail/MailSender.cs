using System.ComponentModel.DataAnnotations;

namespace Kdb.ControlPlane.Mail;

/// <summary>A plain-text message to one recipient.</summary>
/// <param name="To">The recipient's address (validated: no display name, no line breaks).</param>
/// <param name="Subject">One line.</param>
/// <param name="Body">Plain text; the first URL in it is the message's action link.</param>
public sealed record OutgoingMail(string To, string Subject, string Body);

/// <summary>Sends the control plane's mail (invitations, password resets).</summary>
public interface IMailSender
{
    /// <summary>Delivers the message or throws <see cref="MailDeliveryException"/>; returns its Message-ID.</summary>
    Task<string> SendAsync(OutgoingMail mail, CancellationToken cancellationToken);
}

/// <summary>The message could not be handed over (mail directory unwritable, SMTP server refused or unreachable).</summary>
public sealed class MailDeliveryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Mail configuration (section <c>Mail</c>).</summary>
public sealed class MailOptions
{
    public const string Section = "Mail";

    /// <summary>The From header.</summary>
    public string From { get; set; } = "Kdb.Cloud <no-reply@kdb.localhost>";

    /// <summary>Where the default sender writes <c>.eml</c> files; relative paths are relative to the working directory.</summary>
    public string Directory { get; set; } = Path.Combine(".kdb", "mail");

    /// <summary>Base URL of the links in mails (the portal).</summary>
    public string LinkBaseUrl { get; set; } = "http://localhost:5200";

    /// <summary>When <see cref="SmtpOptions.Host"/> is set, mail goes to that SMTP server instead of the directory.</summary>
    public SmtpOptions Smtp { get; set; } = new();
}

/// <summary>SMTP relay settings (section <c>Mail:Smtp</c>).</summary>
public sealed class SmtpOptions
{
    public string? Host { get; set; }

    public int Port { get; set; } = 25;

    public bool EnableSsl { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }
}

/// <summary>Registers the mail sender chosen by configuration.</summary>
public static class MailSetup
{
    public static IServiceCollection AddKdbMail(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<MailOptions>(configuration.GetSection(MailOptions.Section));
        var smtpHost = configuration[$"{MailOptions.Section}:Smtp:Host"];
        if (string.IsNullOrWhiteSpace(smtpHost))
        {
            services.AddSingleton<IMailSender, FileMailSender>();
        }
        else
        {
            services.AddSingleton<IMailSender, SmtpMailSender>();
        }

        return services;
    }

    /// <summary>True for a bare address that is safe in a header (no display name, no CR/LF).</summary>
    public static bool IsValidAddress(string? address) =>
        !string.IsNullOrEmpty(address) && address.Length <= 254 && address.AsSpan().IndexOfAny('\r', '\n') < 0
        && address.AsSpan().IndexOfAny('<', '>') < 0 && new EmailAddressAttribute().IsValid(address);
}
