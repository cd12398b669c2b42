namespace Kdb.Transactions;

/// <summary>Size limits shared by the SQL layer, the codec and the node (DESIGN: large transactions).</summary>
public static class CommitLimits
{
    /// <summary>No Raft entry, and so no encoded commit record, is larger than this.</summary>
    public const int MaxRecordBytes = 8 * 1024 * 1024;

    /// <summary>Largest key.</summary>
    public const int MaxKeyBytes = 4 * 1024;

    /// <summary>Largest stored value; a larger row is SQLSTATE 54000.</summary>
    public const int MaxValueBytes = 4 * 1024 * 1024;

    /// <summary>Length of the key prefix that holds the tenant id (big-endian u64).</summary>
    public const int TenantPrefixBytes = 8;
}
