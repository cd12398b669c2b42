using System.Text;
using System.Text.RegularExpressions;

namespace Kdb.Portal.Tests;

/// <summary>Reads the <c>.eml</c> files the control plane's file mail sender writes, as a user reads their inbox.</summary>
public sealed partial class Mailbox(string directory)
{
    public string Directory { get; } = directory;

    /// <summary>
    /// Waits for a mail to <paramref name="to"/> whose body has a link with <paramref name="linkPath"/> in it, and
    /// returns that link. Mails are written by a background sender, so the wait allows a few seconds.
    /// </summary>
    public async Task<Uri> WaitForLinkAsync(string to, string linkPath, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.eml"))
            {
                var text = await File.ReadAllTextAsync(file, Encoding.UTF8);
                if (!text.Contains("\r\nTo: " + to + "\r\n", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                foreach (Match link in Link().Matches(text))
                {
                    if (link.Value.Contains(linkPath, StringComparison.Ordinal))
                    {
                        return new Uri(link.Value);
                    }
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no mail to {to} with a link to {linkPath} in {Directory}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>How many mails went to <paramref name="to"/> so far.</summary>
    public int CountTo(string to)
    {
        var count = 0;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.eml"))
        {
            if (File.ReadAllText(file, Encoding.UTF8).Contains("\r\nTo: " + to + "\r\n", StringComparison.OrdinalIgnoreCase))
            {
                count++;
            }
        }

        return count;
    }

    [GeneratedRegex(@"https?://[^\s]+")]
    private static partial Regex Link();
}
