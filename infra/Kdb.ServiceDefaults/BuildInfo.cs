using System.Reflection;

namespace Kdb.ServiceDefaults;

/// <summary>What a running binary is: served at <c>/build_info</c>.</summary>
/// <param name="Service">The service name (controlplane, node, proxy, …).</param>
/// <param name="Version">Semantic version of the build.</param>
/// <param name="Commit">Git commit the binary was built from, or "unknown" outside a checkout.</param>
/// <param name="BuildTime">When the service's assembly was written, UTC, ISO 8601.</param>
/// <param name="Runtime">The .NET runtime version it runs on.</param>
public sealed record BuildInfo(string Service, string Version, string Commit, string BuildTime, string Runtime)
{
    /// <summary>Reads the build facts of <paramref name="assembly"/>.</summary>
    public static BuildInfo For(string service, Assembly assembly)
    {
        // The SDK appends "+<commit sha>" to the informational version when built inside a git checkout.
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        var version = plus < 0 ? informational : informational[..plus];
        var commit = plus < 0 ? "unknown" : informational[(plus + 1)..];

        // The assembly's write time is the build time: stamping it into the assembly would make
        // every build non-deterministic and defeat incremental builds.
        var location = assembly.Location;
        var buildTime = string.IsNullOrEmpty(location) || !File.Exists(location)
            ? "unknown"
            : File.GetLastWriteTimeUtc(location).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        return new BuildInfo(service, version, commit, buildTime, Environment.Version.ToString());
    }
}
