using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kdb.Provisioning.Backups;

/// <summary>
/// Where provisioning's part of backups and restores spends its time, as one counter of seconds per stage
/// (<c>kdb_backup_stage_seconds_total{stage}</c> on the control plane's <c>/metrics</c> when provisioning is embedded).
/// A counter, not a histogram: the benchmark differences two scrapes around one backup and one restore, and a sum is
/// exact where bucket quantiles are not. The event round trips through the control plane are what a REST figure
/// spends beyond these.
/// </summary>
internal static class BackupStages
{
    /// <summary>Backup: locate the database, describe it, create its backup key.</summary>
    public const string BackupPrepare = "backup_prepare";

    /// <summary>Backup: the node's export, sealed and stored as it arrives (the three overlap; the parts below split it).</summary>
    public const string BackupExportSealStore = "backup_export_seal_store";

    /// <summary>Backup, inside export-seal-store: waiting for the node's export stream.</summary>
    public const string BackupExportWait = "backup_export_wait";

    /// <summary>Backup, inside export-seal-store: AES-GCM sealing and hashing.</summary>
    public const string BackupSeal = "backup_seal";

    /// <summary>Backup, inside export-seal-store: waiting for chunk writes (backpressure and the last ones).</summary>
    public const string BackupStoreWait = "backup_store_wait";

    /// <summary>Backup: the manifest written.</summary>
    public const string BackupManifest = "backup_manifest";

    /// <summary>Restore: manifest and key loaded, every chunk loaded, checked and decrypted.</summary>
    public const string RestoreOpen = "restore_open";

    /// <summary>Restore: the target database created on its group.</summary>
    public const string RestoreCreate = "restore_create";

    /// <summary>Restore: the node's import (it stages, checks, then proposes and applies the entries).</summary>
    public const string RestoreImport = "restore_import";

    /// <summary>Restore: non-owner roles set and the restored copy's totals compared with the backup's.</summary>
    public const string RestoreVerify = "restore_verify";

    private static readonly Meter Meter = new("Kdb.Provisioning.Backups");

    private static readonly StageSeconds Seconds = new(Meter, "kdb_backup_stage", "Seconds provisioning spent in each stage of backups and restores (see BackupStages)");

    /// <summary>Adds the time since <paramref name="startedTimestamp"/> to <paramref name="stage"/>; returns the current timestamp.</summary>
    public static long Since(string stage, long startedTimestamp)
    {
        var now = Stopwatch.GetTimestamp();
        Add(stage, Stopwatch.GetElapsedTime(startedTimestamp, now));
        return now;
    }

    public static void Add(string stage, TimeSpan elapsed) => Seconds.Add(stage, elapsed);
}
