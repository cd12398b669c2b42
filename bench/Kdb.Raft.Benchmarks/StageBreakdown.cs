using System.Diagnostics;
using System.Globalization;

namespace Kdb.Raft.Benchmarks;

/// <summary>Splits the commit latency of writes against three traced node processes (<c>--trace</c>) into stages, from the
/// events every process recorded with the same monotonic clock: driver → leader's stdin thread → leader loop (propose) →
/// append handed to the transport → follower's transport → follower loop → follower fsync → acknowledgement handed to
/// the transport → leader's transport → leader loop → committed → reply written → driver.</summary>
internal static class StageBreakdown
{
    public static readonly string[] Stages =
    [
        "driver_to_stdin", "stdin_to_propose", "leader_persist", "propose_to_send", "net_to_follower", "follower_inbox",
        "follower_persist", "follower_to_ack", "net_to_leader", "leader_inbox", "ack_to_commit", "commit_to_reply",
        "reply_to_driver", "total",
    ];

    private readonly record struct Ev(string Kind, long Ts, ulong A, ulong B, ulong C, long D);

    /// <summary>Mean milliseconds of each stage (in <see cref="Stages"/> order) over every write whose events were all found,
    /// and how many writes that was. Means, not medians: the stages of the send path then add up to the mean total.</summary>
    public static (double[] MeanMs, int Writes) Analyse(string[][] nodeLines, IReadOnlyDictionary<long, (long Sent, long Answered)> client)
    {
        var nodes = nodeLines.Select(lines => lines.Select(Parse).OrderBy(e => e.Ts).ToArray()).ToArray();
        var samples = Stages.Select(_ => new List<double>()).ToArray();
        var written = 0;
        for (var l = 0; l < nodes.Length; l++)
        {
            var leaderId = (ulong)l + 1;
            foreach (var prop in nodes[l].Where(e => e.Kind == "prop"))
            {
                var idx = prop.A;
                if (!client.TryGetValue((long)prop.B, out var times) || times.Answered == 0)
                {
                    continue;
                }
                var commit = First(nodes[l], prop.Ts, e => e.Kind == "commit" && e.A == idx);
                var persist = First(nodes[l], prop.Ts, e => e.Kind == "persist" && e.A <= idx && idx <= e.B);
                if (commit is not { } c || persist is not { } lp)
                {
                    continue;
                }
                var flush = First(nodes[l], c.Ts, e => e.Kind == "flush");
                // The follower whose acknowledgement reached the leader's loop first is the one that completed the quorum.
                (Ev Send, Ev App, Ev Persist, Ev SendResp, Ev Resp)? best = null;
                for (var f = 0; f < nodes.Length; f++)
                {
                    if (f == l)
                    {
                        continue;
                    }
                    var fid = (ulong)f + 1;
                    var send = First(nodes[l], prop.Ts, e => e.Kind == "send" && e.A == fid && e.B <= idx && idx <= e.C);
                    if (send is not { } s)
                    {
                        continue;
                    }
                    var app = First(nodes[f], s.Ts, e => e.Kind == "app" && e.A == leaderId && e.B <= idx && idx <= e.C && e.D >= s.Ts);
                    if (app is not { } a)
                    {
                        continue;
                    }
                    var fp = First(nodes[f], a.Ts, e => e.Kind == "persist" && e.A <= idx && idx <= e.B);
                    if (fp is not { } p)
                    {
                        continue;
                    }
                    var sr = First(nodes[f], p.Ts, e => e.Kind == "sendresp" && e.A == leaderId && e.B >= idx);
                    if (sr is not { } r)
                    {
                        continue;
                    }
                    var resp = First(nodes[l], r.Ts, e => e.Kind == "resp" && e.A == fid && e.B >= idx && e.D >= r.Ts);
                    if (resp is { } rr && (best is null || rr.Ts < best.Value.Resp.Ts))
                    {
                        best = (s, a, p, r, rr);
                    }
                }
                if (best is not { } b || flush is not { } fl)
                {
                    continue;
                }
                long[] bounds =
                [
                    times.Sent, prop.D, prop.Ts, b.Send.Ts, b.App.D, b.App.Ts, b.Persist.Ts, b.SendResp.Ts, b.Resp.D, b.Resp.Ts,
                    c.Ts, fl.Ts, times.Answered,
                ];
                // Stages in order, except leader_persist (index 2), which runs beside the send path.
                samples[0].Add(Ms(bounds[1] - bounds[0]));
                samples[1].Add(Ms(bounds[2] - bounds[1]));
                samples[2].Add(Ms(lp.Ts - prop.Ts));
                for (var i = 3; i < 13; i++)
                {
                    samples[i].Add(Ms(bounds[i] - bounds[i - 1]));
                }
                samples[13].Add(Ms(times.Answered - times.Sent));
                written++;
            }
        }
        return (samples.Select(s => s.Count == 0 ? double.NaN : s.Average()).ToArray(), written);
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>
    /// The first event at or after <paramref name="from"/> that matches. Events are sorted by time, so the search starts
    /// at a binary-searched position: scanning from the start for every write made a 64-proposer run's analysis
    /// quadratic (minutes of CPU for two seconds of writes). An event received by a transport is handled by the loop
    /// later, so its loop time is never before its receive time (<c>D</c>) either.
    /// </summary>
    private static Ev? First(Ev[] events, long from, Func<Ev, bool> match)
    {
        int lo = 0, hi = events.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (events[mid].Ts < from)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        for (var i = lo; i < events.Length; i++)
        {
            if (match(events[i]))
            {
                return events[i];
            }
        }
        return null;
    }

    private static Ev Parse(string line)
    {
        var p = line.Split(' ');
        static ulong U(string s) => ulong.Parse(s, CultureInfo.InvariantCulture);
        return new Ev(p[1], long.Parse(p[2], CultureInfo.InvariantCulture), U(p[3]), U(p[4]), U(p[5]), long.Parse(p[6], CultureInfo.InvariantCulture));
    }
}
