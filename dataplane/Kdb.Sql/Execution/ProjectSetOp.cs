using Kdb.Sql.Planning;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// PostgreSQL's ProjectSet: the input row followed by one column per set-returning function of the select list.
/// The functions run in lockstep; one that ends early yields NULL until the longest ends, and an input row for
/// which every function is empty yields no row.
/// </summary>
internal sealed class ProjectSetOp : Operator
{
    private readonly Operator _input;
    private readonly SrfCall[] _calls;
    private readonly IEnumerator<Value>?[] _running;
    private bool _inRow;

    public ProjectSetOp(Operator input, SrfCall[] calls)
        : base(input.Width + calls.Length)
    {
        _input = input;
        _calls = calls;
        _running = new IEnumerator<Value>?[calls.Length];
    }

    public override void Open(ExecContext ctx)
    {
        DisposeRunning();
        _inRow = false;
        _input.Open(ctx);
    }

    public override bool Next(ExecContext ctx)
    {
        while (true)
        {
            if (!_inRow)
            {
                if (!_input.Next(ctx))
                {
                    return false;
                }

                var source = _input.Row;
                Array.Copy(source, Row, source.Length);
                for (var i = 0; i < _calls.Length; i++)
                {
                    _running[i] = _calls[i].Generate(source, ctx).GetEnumerator();
                }

                _inRow = true;
            }

            ctx.CheckCancellation();
            var any = false;
            var baseWidth = _input.Width;
            for (var i = 0; i < _running.Length; i++)
            {
                var e = _running[i];
                if (e is not null && e.MoveNext())
                {
                    Row[baseWidth + i] = e.Current;
                    any = true;
                }
                else
                {
                    e?.Dispose();
                    _running[i] = null;
                    Row[baseWidth + i] = Value.Null;
                }
            }

            if (any)
            {
                return true;
            }

            _inRow = false;
        }
    }

    public override void Close(ExecContext ctx)
    {
        DisposeRunning();
        _input.Close(ctx);
    }

    private void DisposeRunning()
    {
        for (var i = 0; i < _running.Length; i++)
        {
            _running[i]?.Dispose();
            _running[i] = null;
        }
    }

    public override string Label => "ProjectSet";

    public override IEnumerable<string> Details => ["Functions: " + string.Join(", ", _calls.Select(c => c.Describe()))];

    public override IEnumerable<Operator> Inputs => [_input];
}

/// <summary>The current value of a select-list set-returning function, placed after the row ProjectSet receives.</summary>
internal sealed class SrfRefExpr(SrfBinding binding, int level, int index, SqlType type, string name) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx) => row[binding.BaseWidth(level) + index];

    public override string Describe() => name + "(...)";
}
