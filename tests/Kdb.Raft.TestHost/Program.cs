using Kdb.Raft.TestHost;

// dotnet Kdb.Raft.TestHost.dll node --id N --dir D --port P --peers 1=http://..,2=.. [--async-append] [--httpclient] [--trace]
if (args.Length > 0 && args[0] == "node")
{
    return await NodeHost.RunAsync(args);
}
await Console.Error.WriteLineAsync("usage: Kdb.Raft.TestHost node --id N --dir DIR --port PORT --peers 1=URL,2=URL,... [--async-append] [--httpclient] [--trace]");
return 2;
