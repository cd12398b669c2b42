namespace Kdb.Launcher;

internal static class FileUtil
{
    /// <summary>Writes through a temp file and a rename, so a crash never leaves half a file.</summary>
    public static void WriteAtomic(string path, string contents, bool privateFile = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, contents);
        if (privateFile && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(temp, path, overwrite: true);
    }
}
