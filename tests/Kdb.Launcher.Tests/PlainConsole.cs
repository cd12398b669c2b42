using Spectre.Console;

namespace Kdb.Launcher.Tests;

/// <summary>A console that writes plain text (no colours, no prompts, wide lines) to a writer the test reads.</summary>
internal static class PlainConsole
{
    public static IAnsiConsole Into(StringWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(output),
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 200;
        return console;
    }
}
