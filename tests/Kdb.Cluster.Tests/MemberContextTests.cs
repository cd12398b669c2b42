using Kdb.Raft;

namespace Kdb.Cluster.Tests;

/// <summary>The member a membership change carries for every replica to learn (its address): exact round trip, and
/// anything else (old entries, truncation, random bytes, another node's id) is no member rather than a wrong one.</summary>
public sealed class MemberContextTests
{
    private static readonly GroupMember Member = new("node_0123456789abcdef", GroupMember.RaftIdOf("node_0123456789abcdef"), "http://127.0.0.1:45001");

    [Fact]
    public void RoundTrip_ThroughAConfChangeEntry()
    {
        var entry = new ConfChange(ConfChangeType.AddLearner, Member.RaftId, Member.EncodeContext()).Encode();
        var decoded = ConfChange.Decode(entry);
        Assert.Equal(ConfChangeType.AddLearner, decoded.Type);
        Assert.Equal(Member.RaftId, decoded.NodeId);
        Assert.Equal(Member, GroupMember.FromContext(decoded.Context.Span, decoded.NodeId));
    }

    [Fact]
    public void AnEntryWithoutContext_StillDecodes_AndNamesNoMember()
    {
        var old = new byte[ConfChange.EncodedLength];
        old[0] = (byte)ConfChangeType.AddVoter;
        BitConverter.TryWriteBytes(old.AsSpan(1), Member.RaftId);
        var decoded = ConfChange.Decode(old);
        Assert.Equal(Member.RaftId, decoded.NodeId);
        Assert.True(decoded.Context.IsEmpty);
        Assert.Null(GroupMember.FromContext(decoded.Context.Span, decoded.NodeId));
        Assert.Throws<InvalidDataException>(() => ConfChange.Decode(old.AsSpan(0, ConfChange.EncodedLength - 1)));
    }

    [Fact]
    public void TruncatedRandomOrForeign_NameNoMember()
    {
        var context = Member.EncodeContext();
        for (var length = 0; length < context.Length; length++)
        {
            Assert.Null(GroupMember.FromContext(context.AsSpan(0, length), Member.RaftId));
        }
        Assert.Null(GroupMember.FromContext([.. context, 0], Member.RaftId));
        Assert.Null(GroupMember.FromContext(context, Member.RaftId + 1));
        var wrongVersion = (byte[])context.Clone();
        wrongVersion[0] = 2;
        Assert.Null(GroupMember.FromContext(wrongVersion, Member.RaftId));
        var random = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            Assert.Null(GroupMember.FromContext(bytes, Member.RaftId));
        }
    }
}
