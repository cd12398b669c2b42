using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Kdb.Raft.TestHost;

/// <summary>Timestamps of each write's stages in one node process (<c>--trace</c>), printed as <c>trace</c> lines on the
/// <c>trace</c> command. Stopwatch timestamps are CLOCK_MONOTONIC on Linux, so the driver can line up the events of all
/// three processes: that is how the benchmark splits a commit's latency into stages.</summary>
internal sealed class HostTrace
{
    private readonly StringBuilder _events = new();
    private readonly Lock _lock = new();

    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Records one event: a kind and up to four numbers (indexes, peers, timestamps).</summary>
    public void Add(string kind, long ts, ulong a = 0, ulong b = 0, ulong c = 0, long d = 0)
    {
        lock (_lock)
        {
            _events.Append(CultureInfo.InvariantCulture, $"trace {kind} {ts} {a} {b} {c} {d}\n");
        }
    }

    /// <summary>Appends the messages of interest (appends with entries and their acknowledgements) handed to the transport.</summary>
    public void Sent(Message m, long ts)
    {
        if (m.Type == MessageType.Append && m.Entries.Length > 0)
        {
            Add("send", ts, m.To, m.Entries[0].Index, m.Entries[^1].Index);
        }
        else if (m.Type == MessageType.AppendResponse && !m.Reject)
        {
            Add("sendresp", ts, m.To, m.Index);
        }
    }

    /// <summary>A message stepped by the loop, with the time the transport handed it over.</summary>
    public void Stepped(Message m, long receivedTs, long steppedTs)
    {
        if (m.Type == MessageType.Append && m.Entries.Length > 0)
        {
            Add("app", steppedTs, m.From, m.Entries[0].Index, m.Entries[^1].Index, receivedTs);
        }
        else if (m.Type == MessageType.AppendResponse && !m.Reject)
        {
            Add("resp", steppedTs, m.From, m.Index, 0, receivedTs);
        }
    }

    /// <summary>Everything recorded so far, followed by <c>traceend</c>.</summary>
    public string Drain()
    {
        lock (_lock)
        {
            var s = _events.Append("traceend\n").ToString();
            _events.Clear();
            return s;
        }
    }
}
