namespace Kdb.Node.Tests.Standalone;

/// <summary>psql 15 against a standalone node process: queries, meta-commands and \copy, asserting on its output.</summary>
[Collection(StandaloneCollection.Name)]
public sealed class PsqlTests(StandaloneNodeFixture fixture)
{
    private StandaloneNode Node => fixture.Node;

    private Task<Tools.Result> PsqlAsync(params string[] arguments) => Tools.PsqlAsync(Node, StandaloneNode.Owner, StandaloneNode.OwnerPassword, arguments);

    private static string Unique(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..8];

    private static void Succeeded(Tools.Result r) => Assert.True(r.ExitCode == 0, Tools.Describe(r));

    [Fact]
    public async Task Command_SelectOne_PrintsTable()
    {
        var r = await PsqlAsync("-c", "select 1");

        Succeeded(r);
        Assert.Contains("?column?", r.Output, StringComparison.Ordinal);
        Assert.Contains("(1 row)", r.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_MultiStatementString_RunsAllAndPrintsLastResult()
    {
        var table = Unique("multi");
        var r = await PsqlAsync("-A", "-t", "-c", $"create table {table} (id int primary key, v text); insert into {table} values (1, 'a'), (2, 'b'); select count(*) from {table}");

        // psql 15 prints the result of every statement of the string, in order.
        Succeeded(r);
        Assert.Equal(["CREATE TABLE", "INSERT 0 2", "2"], r.Output.Trim().Split('\n'));
    }

    [Fact]
    public async Task MetaCommands_ListAndDescribe_ShowTheTable()
    {
        var table = Unique("meta");
        Succeeded(await PsqlAsync("-c", $"create table {table} (id int primary key, name varchar(40) not null, score numeric(10,2) default 0)", "-c", $"create index {table}_name on {table} (name)"));

        var dt = await PsqlAsync("-c", @"\dt");
        Succeeded(dt);
        Assert.Contains(table, dt.Output, StringComparison.Ordinal);
        Assert.Contains("table", dt.Output, StringComparison.Ordinal);

        var d = await PsqlAsync("-c", $@"\d {table}");
        Succeeded(d);
        Assert.Contains($"Table \"public.{table}\"", d.Output, StringComparison.Ordinal);
        Assert.Contains("character varying(40)", d.Output, StringComparison.Ordinal);
        Assert.Contains("numeric(10,2)", d.Output, StringComparison.Ordinal);
        Assert.Contains($"\"{table}_pkey\" PRIMARY KEY", d.Output, StringComparison.Ordinal);

        var di = await PsqlAsync("-c", @"\di");
        Succeeded(di);
        Assert.Contains($"{table}_name", di.Output, StringComparison.Ordinal);
        Assert.Contains($"{table}_pkey", di.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MetaCommands_DatabasesAndRoles_ShowOnlyThisDatabase()
    {
        var l = await PsqlAsync("-c", @"\l");
        Succeeded(l);
        Assert.Contains(StandaloneNode.Database, l.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("other", l.Output, StringComparison.Ordinal);

        var du = await PsqlAsync("-c", @"\du");
        Succeeded(du);
        Assert.Contains(StandaloneNode.Owner, du.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Copy_BothWaysTextAndCsv_RoundTripsRows()
    {
        var table = Unique("copy");
        Succeeded(await PsqlAsync("-c", $"create table {table} (id int primary key, name text, note text)"));
        var directory = Path.Combine(Path.GetTempPath(), Unique("kdb-copy"));
        Directory.CreateDirectory(directory);
        try
        {
            var textFile = Path.Combine(directory, "in.tsv");
            await File.WriteAllTextAsync(textFile, "1\talpha\t\\N\n2\twith\\ttab\tline\\nbreak\n3\tb\\\\s\t\n");
            var copyIn = await PsqlAsync("-c", $@"\copy {table} from '{textFile}'");
            Succeeded(copyIn);
            Assert.Contains("COPY 3", copyIn.Output, StringComparison.Ordinal);

            var csvFile = Path.Combine(directory, "in.csv");
            await File.WriteAllTextAsync(csvFile, "id;name;note\n4;\"semi;colon\";\"quote \"\"here\"\"\"\n5;;\"\"\n");
            var copyCsv = await PsqlAsync("-c", $@"\copy {table} from '{csvFile}' with (format csv, header true, delimiter ';')");
            Succeeded(copyCsv);
            Assert.Contains("COPY 2", copyCsv.Output, StringComparison.Ordinal);

            var check = await PsqlAsync("-A", "-t", "-c", $"select id, coalesce(name, '<null>'), coalesce(note, '<null>') from {table} order by id");
            Succeeded(check);
            Assert.Equal(
                "1|alpha|<null>\n2|with\ttab|line\nbreak\n3|b\\s|\n4|semi;colon|quote \"here\"\n5|<null>|",
                check.Output.TrimEnd('\n'));

            var outFile = Path.Combine(directory, "out.csv");
            var copyOut = await PsqlAsync("-c", $@"\copy (select id, name from {table} where id in (1, 4, 5) order by id) to '{outFile}' with (format csv, header, null 'NULL')");
            Succeeded(copyOut);
            Assert.Contains("COPY 3", copyOut.Output, StringComparison.Ordinal);
            Assert.Equal("id,name\n1,alpha\n4,semi;colon\n5,NULL\n", await File.ReadAllTextAsync(outFile));

            var textOut = Path.Combine(directory, "out.tsv");
            Succeeded(await PsqlAsync("-c", $@"\copy {table} to '{textOut}'"));
            var lines = await File.ReadAllLinesAsync(textOut);
            Assert.Equal(5, lines.Length);
            Assert.Contains("2\twith\\ttab\tline\\nbreak", lines);
            Assert.Contains("1\talpha\t\\N", lines);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Copy_BadRow_FailsWithLineAndKeepsNothingOfIt()
    {
        var table = Unique("copybad");
        Succeeded(await PsqlAsync("-c", $"create table {table} (id int primary key, v int)"));
        var file = Path.Combine(Path.GetTempPath(), Unique("bad") + ".tsv");
        await File.WriteAllTextAsync(file, "1\t10\n2\tnot-a-number\n");
        try
        {
            var r = await PsqlAsync("-c", $@"\copy {table} from '{file}'");
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("invalid input syntax for type integer", r.Error, StringComparison.Ordinal);

            var count = await PsqlAsync("-A", "-t", "-c", $"select count(*) from {table}");
            Succeeded(count);
            Assert.Equal("0", count.Output.Trim());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task CtrlC_DuringLongQuery_PsqlSendsCancelRequestAndTheQueryFails57014()
    {
        var info = new System.Diagnostics.ProcessStartInfo(Tools.Bin("psql"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-X", "-h", "127.0.0.1", "-p", Node.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", StandaloneNode.Owner, "-d", StandaloneNode.Database, "-c", "select count(*) from generate_series(1, 2000000000) a" })
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["PGPASSWORD"] = StandaloneNode.OwnerPassword;
        using var psql = System.Diagnostics.Process.Start(info)!;
        var output = psql.StandardOutput.ReadToEndAsync();
        var error = psql.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        // What Ctrl-C does in a terminal: SIGINT to psql, whose handler sends a CancelRequest on a new connection.
        // The first may come before the query runs (then there is nothing to cancel yet), so repeat until psql ends.
        await Task.Delay(2000, deadline.Token);
        while (!psql.HasExited)
        {
            using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", psql.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(deadline.Token);
            }

            await Task.WhenAny(psql.WaitForExitAsync(deadline.Token), Task.Delay(500, deadline.Token));
        }

        var stderr = await error;
        Assert.True(psql.ExitCode == 1, $"exit {psql.ExitCode}: {await output} {stderr}");
        Assert.Contains("canceling statement due to user request", stderr, StringComparison.Ordinal);

        // The node goes on serving.
        Succeeded(await PsqlAsync("-c", "select 1"));
    }
}
