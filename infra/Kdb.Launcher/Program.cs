using Kdb.Launcher;
using Spectre.Console;

// Piped output (CI, scripts) gets plain text at a width that keeps table rows on one line.
var console = AnsiConsole.Create(new AnsiConsoleSettings
{
    Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
    ColorSystem = Console.IsOutputRedirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
});
if (Console.IsOutputRedirected)
{
    console.Profile.Width = 200;
}

return await KdbCli.RunAsync(args, KdbPaths.Discover(), console, Console.Error);
