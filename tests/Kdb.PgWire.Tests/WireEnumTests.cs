using Kdb.PgWire.Protocol;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests;

/// <summary>Freezes wire values: they are the protocol and the pg_type catalog, never renumbered.</summary>
public sealed class WireEnumTests
{
    [Fact]
    public void FrontendCodes_Frozen()
    {
        var expected = new Dictionary<FrontendMessageCode, char>
        {
            [FrontendMessageCode.Bind] = 'B', [FrontendMessageCode.Close] = 'C', [FrontendMessageCode.CopyData] = 'd',
            [FrontendMessageCode.CopyDone] = 'c', [FrontendMessageCode.CopyFail] = 'f', [FrontendMessageCode.Describe] = 'D',
            [FrontendMessageCode.Execute] = 'E', [FrontendMessageCode.Flush] = 'H', [FrontendMessageCode.FunctionCall] = 'F',
            [FrontendMessageCode.Parse] = 'P', [FrontendMessageCode.PasswordMessage] = 'p', [FrontendMessageCode.Query] = 'Q',
            [FrontendMessageCode.Sync] = 'S', [FrontendMessageCode.Terminate] = 'X',
        };
        Assert.Equal(expected.Count, Enum.GetValues<FrontendMessageCode>().Length);
        Assert.All(expected, kv => Assert.Equal((byte)kv.Value, (byte)kv.Key));
    }

    [Fact]
    public void BackendCodes_Frozen()
    {
        var expected = new Dictionary<BackendMessageCode, char>
        {
            [BackendMessageCode.Authentication] = 'R', [BackendMessageCode.BackendKeyData] = 'K', [BackendMessageCode.BindComplete] = '2',
            [BackendMessageCode.CloseComplete] = '3', [BackendMessageCode.CommandComplete] = 'C', [BackendMessageCode.CopyData] = 'd',
            [BackendMessageCode.CopyDone] = 'c', [BackendMessageCode.CopyInResponse] = 'G', [BackendMessageCode.CopyOutResponse] = 'H',
            [BackendMessageCode.DataRow] = 'D', [BackendMessageCode.EmptyQueryResponse] = 'I', [BackendMessageCode.ErrorResponse] = 'E',
            [BackendMessageCode.NegotiateProtocolVersion] = 'v', [BackendMessageCode.NoData] = 'n', [BackendMessageCode.NoticeResponse] = 'N',
            [BackendMessageCode.ParameterDescription] = 't', [BackendMessageCode.ParameterStatus] = 'S', [BackendMessageCode.ParseComplete] = '1',
            [BackendMessageCode.PortalSuspended] = 's', [BackendMessageCode.ReadyForQuery] = 'Z', [BackendMessageCode.RowDescription] = 'T',
        };
        Assert.Equal(expected.Count, Enum.GetValues<BackendMessageCode>().Length);
        Assert.All(expected, kv => Assert.Equal((byte)kv.Value, (byte)kv.Key));
    }

    [Fact]
    public void AuthenticationAndStartupCodes_Frozen()
    {
        Assert.Equal([0, 3, 10, 11, 12], Enum.GetValues<AuthenticationCode>().Select(v => (int)v));
        Assert.Equal(196608, StartupCodes.ProtocolVersion3);
        Assert.Equal(80877103, StartupCodes.SslRequest);
        Assert.Equal(80877104, StartupCodes.GssEncRequest);
        Assert.Equal(80877102, StartupCodes.CancelRequest);
    }

    [Fact]
    public void TypeOids_Frozen() => Assert.Equal(
        "0 16 17 18 19 20 21 22 23 24 25 26 30 114 700 701 705 1005 1007 1009 1016 1028 1042 1043 1082 1114 1184 1186 1700 2205 2206 2950 3802",
        string.Join(' ', Enum.GetValues<PgTypeOid>().Select(v => ((uint)v).ToString(System.Globalization.CultureInfo.InvariantCulture))));

    [Fact]
    public void StatusAndFormats_Frozen()
    {
        Assert.Equal((byte)'I', (byte)PgTransactionStatus.Idle);
        Assert.Equal((byte)'T', (byte)PgTransactionStatus.InTransaction);
        Assert.Equal((byte)'E', (byte)PgTransactionStatus.Failed);
        Assert.Equal(0, (short)PgFormat.Text);
        Assert.Equal(1, (short)PgFormat.Binary);
    }
}
