namespace Kdb.PgWire.Protocol;

/// <summary>Type bytes of messages the client sends (protocol 3.0). Wire values: never change, only append.</summary>
internal enum FrontendMessageCode : byte
{
    Bind = (byte)'B',
    Close = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyFail = (byte)'f',
    Describe = (byte)'D',
    Execute = (byte)'E',
    Flush = (byte)'H',
    FunctionCall = (byte)'F',
    Parse = (byte)'P',
    PasswordMessage = (byte)'p',
    Query = (byte)'Q',
    Sync = (byte)'S',
    Terminate = (byte)'X',
}

/// <summary>Type bytes of messages the server sends (protocol 3.0). Wire values: never change, only append.</summary>
internal enum BackendMessageCode : byte
{
    Authentication = (byte)'R',
    BackendKeyData = (byte)'K',
    BindComplete = (byte)'2',
    CloseComplete = (byte)'3',
    CommandComplete = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyInResponse = (byte)'G',
    CopyOutResponse = (byte)'H',
    DataRow = (byte)'D',
    EmptyQueryResponse = (byte)'I',
    ErrorResponse = (byte)'E',
    NegotiateProtocolVersion = (byte)'v',
    NoData = (byte)'n',
    NoticeResponse = (byte)'N',
    ParameterDescription = (byte)'t',
    ParameterStatus = (byte)'S',
    ParseComplete = (byte)'1',
    PortalSuspended = (byte)'s',
    ReadyForQuery = (byte)'Z',
    RowDescription = (byte)'T',
}

/// <summary>Sub-codes of the Authentication ('R') message.</summary>
internal enum AuthenticationCode
{
    Ok = 0,
    CleartextPassword = 3,
    Sasl = 10,
    SaslContinue = 11,
    SaslFinal = 12,
}

/// <summary>Field codes of ErrorResponse and NoticeResponse.</summary>
internal enum ErrorFieldCode : byte
{
    Severity = (byte)'S',
    SeverityNonLocalized = (byte)'V',
    Code = (byte)'C',
    Message = (byte)'M',
    Detail = (byte)'D',
    Hint = (byte)'H',
    Position = (byte)'P',
}

/// <summary>Request codes carried in the first int32 of untyped startup-phase packets.</summary>
internal static class StartupCodes
{
    public const int ProtocolVersion3 = 196608; // 3 << 16
    public const int SslRequest = 80877103;
    public const int GssEncRequest = 80877104;
    public const int CancelRequest = 80877102;
}
