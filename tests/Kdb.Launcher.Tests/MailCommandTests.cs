namespace Kdb.Launcher.Tests;

public sealed class MailCommandTests
{
    [Fact]
    public async Task Mail_ListsMessagesNewestFirst_WithDateToSubjectAndLink()
    {
        using var root = new TempDir();
        var paths = new KdbPaths(root.Path, Path.Combine(root.Path, ".kdb"));
        Directory.CreateDirectory(paths.Mail);
        await WriteAsync(paths, "20261120T100000000-a.eml", "Fri, 20 Nov 2026 10:00:00 +0000", "old@example.com", "Reset your Kdb.Cloud password", "Open\r\nhttp://127.0.0.1:5200/reset-password?token=old\r\n");
        await WriteAsync(paths, "20261122T090000000-b.eml", "Sun, 22 Nov 2026 09:00:00 +0000", "new@example.com", "=?utf-8?B?" + Convert.ToBase64String("Grüße"u8.ToArray()) + "?=", "Join:\r\nhttp://127.0.0.1:5200/invitations/inv_1?token=new\r\n");
        await WriteAsync(paths, "20261121T090000000-c.eml", "Sat, 21 Nov 2026 09:00:00 +0000", "mid@example.com", "No link", "plain text only\r\n");
        await File.WriteAllTextAsync(Path.Combine(paths.Mail, "garbage.eml"), "not a message at all");
        await File.WriteAllTextAsync(Path.Combine(paths.Mail, ".x.eml.tmp"), "half written");

        var (code, output) = await RunAsync(paths, "mail");

        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(
        [
            "2026-11-22 09:00:00Z  new@example.com  Grüße",
            "http://127.0.0.1:5200/invitations/inv_1?token=new",
            "2026-11-21 09:00:00Z  mid@example.com  No link",
            "(no link)",
            "2026-11-20 10:00:00Z  old@example.com  Reset your Kdb.Cloud password",
            "http://127.0.0.1:5200/reset-password?token=old",
        ], lines);
    }

    [Fact]
    public async Task Mail_Limit_ShowsOnlyTheNewest()
    {
        using var root = new TempDir();
        var paths = new KdbPaths(root.Path, Path.Combine(root.Path, ".kdb"));
        Directory.CreateDirectory(paths.Mail);
        await WriteAsync(paths, "1.eml", "Fri, 20 Nov 2026 10:00:00 +0000", "a@example.com", "first", "http://x/1\r\n");
        await WriteAsync(paths, "2.eml", "Fri, 20 Nov 2026 11:00:00 +0000", "b@example.com", "second", "http://x/2\r\n");

        var (code, output) = await RunAsync(paths, "mail", "-n", "1");

        Assert.Equal(0, code);
        Assert.Contains("second", output, StringComparison.Ordinal);
        Assert.DoesNotContain("first", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mail_NoDirectory_SaysThereIsNoMail()
    {
        using var root = new TempDir();
        var paths = new KdbPaths(root.Path, Path.Combine(root.Path, ".kdb"));

        var (code, output) = await RunAsync(paths, "mail");

        Assert.Equal(0, code);
        Assert.Contains("No mail in", output, StringComparison.Ordinal);
    }

    private static Task WriteAsync(KdbPaths paths, string name, string date, string to, string subject, string body) =>
        File.WriteAllTextAsync(Path.Combine(paths.Mail, name), $"Date: {date}\r\nFrom: Kdb.Cloud <no-reply@kdb.localhost>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@kdb.localhost>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");

    private static async Task<(int Code, string Output)> RunAsync(KdbPaths paths, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = PlainConsole.Into(output);
        var code = await KdbCli.RunAsync(args, paths, console, error);
        return (code, output.ToString());
    }
}
