using Kdb.PgWire.Server;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>
/// What a running portal can do on the connection: write rows, send notices and ParameterStatus, run
/// COPY data transfer. Valid only during <see cref="IPgPortal.ExecuteAsync"/>.
/// </summary>
public sealed class PgExecutionContext
{
    private readonly PgConnection _connection;

    internal PgExecutionContext(PgConnection connection, PgRowWriter rows)
    {
        _connection = connection;
        Rows = rows;
    }

    /// <summary>Writes result rows in the formats the client asked for.</summary>
    public PgRowWriter Rows { get; }

    /// <summary>Row limit of this Execute: 0 means all rows; otherwise return suspended after this many.</summary>
    public int MaxRows { get; internal set; }

    /// <summary>Fires on CancelRequest or statement timeout (the server then reports 57014).</summary>
    public CancellationToken CancellationToken { get; internal set; }

    /// <summary>True when the statement came in a simple Query message (results are always text).</summary>
    public bool IsSimpleQuery { get; internal set; }

    /// <summary>Sends a NoticeResponse now (before the statement's result completes).</summary>
    public void SendNotice(PgNotice notice)
    {
        ArgumentNullException.ThrowIfNull(notice);
        _connection.WriteNotice(notice);
    }

    /// <summary>Sends a ParameterStatus (after SET of a reported setting, e.g. application_name).</summary>
    public void ReportParameterStatus(string name, string value) => _connection.WriteParameterStatus(name, value);

    /// <summary>DISCARD ALL / DEALLOCATE ALL: drop every prepared statement and portal once this statement completes.</summary>
    public void DiscardAll() => _connection.RequestDiscardAll();

    /// <summary>
    /// COPY FROM STDIN: sends CopyInResponse and waits for data. Then call <see cref="ReadCopyDataAsync"/>
    /// until it returns an empty chunk.
    /// </summary>
    public ValueTask StartCopyInAsync(short columnCount, PgFormat format) => _connection.StartCopyInAsync(columnCount, format);

    /// <summary>
    /// The next CopyData payload (valid until the next call), or an empty chunk at CopyDone. CopyFail
    /// throws <see cref="PgException"/> 57014.
    /// </summary>
    public ValueTask<ReadOnlyMemory<byte>> ReadCopyDataAsync() => _connection.ReadCopyDataAsync(CancellationToken);

    /// <summary>COPY TO STDOUT: sends CopyOutResponse. The server sends CopyDone when the portal completes.</summary>
    public void StartCopyOut(short columnCount, PgFormat format) => _connection.StartCopyOut(columnCount, format);

    /// <summary>Sends one CopyData message, waiting for the client when 32 KB are unflushed.</summary>
    public ValueTask WriteCopyDataAsync(ReadOnlyMemory<byte> data) => _connection.WriteCopyDataAsync(data, CancellationToken);
}
