namespace Kdb.Storage;

/// <summary>Engine entry point.</summary>
public static class StorageInfo
{
    /// <summary>Format version of on-disk files.</summary>
    public const int FormatVersion = 1;
}
