namespace Kdb.Testing.Hosting;

/// <summary>Locates the repository and the build output of its projects, for launching service hosts as processes.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>The repository root: the nearest ancestor of the test assembly holding both global.json and Directory.Build.props.</summary>
    /// <exception cref="DirectoryNotFoundException">The tests do not run from inside the repository.</exception>
    public static string Root => RootPath.Value;

    /// <summary>
    /// The configuration the tests were built with ("Debug" or "Release"), read from their own output path
    /// (<c>bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c>), so launched hosts match the build under test.
    /// </summary>
    public static string Configuration
    {
        get
        {
            var tfmDirectory = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            return tfmDirectory.Parent?.Parent?.Name == "bin" ? tfmDirectory.Parent.Name : "Debug";
        }
    }

    /// <summary>
    /// Path of a project's built assembly, for <see cref="Kdb.Testing.Processes.ProcessSpec.DotNet"/>.
    /// </summary>
    /// <param name="projectDirectory">Project folder relative to the root, e.g. <c>controlplane/Kdb.ControlPlane</c>.</param>
    /// <param name="assemblyName">Assembly name; defaults to the folder name (house style: folder = assembly).</param>
    /// <exception cref="FileNotFoundException">The project has not been built in this configuration.</exception>
    public static string BuiltAssembly(string projectDirectory, string? assemblyName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(projectDirectory);
        var project = Path.Combine(Root, projectDirectory);
        var name = assemblyName ?? Path.GetFileName(project.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Name;
        var path = Path.Combine(project, "bin", Configuration, tfm, name + ".dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"'{path}' does not exist. Build it first: dotnet build {projectDirectory} -c {Configuration} " +
                "(or add a ProjectReference with ReferenceOutputAssembly=false to the test project so it builds with it).",
                path);
        }

        return path;
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "global.json"))
                && File.Exists(Path.Combine(directory.FullName, "Directory.Build.props")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No repository root (global.json + Directory.Build.props) above {AppContext.BaseDirectory}.");
    }
}
