using System.Collections.Concurrent;

namespace Kdb.PgWire.Tests.Support;

/// <summary>The in-memory state the test sessions share and the tests observe.</summary>
internal sealed class TestDatabase
{
    private readonly List<Item> _items = [];

    /// <summary>Every statement text a session prepared, in order.</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    /// <summary>Rows handed to the row writer by generate_series (backpressure tests).</summary>
    public long RowsProduced;

    /// <summary>Released each time pg_sleep starts (cancel tests).</summary>
    public SemaphoreSlim SleepStarted { get; } = new(0);

    /// <summary>The startup of the most recently opened session.</summary>
    public Kdb.PgWire.Session.PgStartup? LastStartup { get; set; }

    /// <summary>Sessions opened and not yet disposed.</summary>
    public int OpenSessions;

    public Item Insert(int id, string? name)
    {
        var item = new Item(id, name);
        lock (_items)
        {
            _items.Add(item);
        }

        return item;
    }

    public void Remove(Item item)
    {
        lock (_items)
        {
            _items.Remove(item);
        }
    }

    public void Clear()
    {
        lock (_items)
        {
            _items.Clear();
        }
    }

    public Item[] Snapshot()
    {
        lock (_items)
        {
            return [.. _items];
        }
    }

    internal sealed record Item(int Id, string? Name);
}
