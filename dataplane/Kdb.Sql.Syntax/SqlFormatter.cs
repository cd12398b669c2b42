using System.Text;
using Kdb.Sql.Syntax.Formatting;
using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax;

/// <summary>
/// Deparses syntax trees back to SQL text that re-parses to an equal tree (positions aside): identifiers
/// quoted when needed, strings escaped, parentheses only where precedence needs them. Used to store
/// CHECK/DEFAULT expressions, for pg_get_expr and for EXPLAIN output.
/// </summary>
public static class SqlFormatter
{
    /// <summary>Formats an expression.</summary>
    public static string Format(Expr expr)
    {
        ArgumentNullException.ThrowIfNull(expr);
        var w = new SqlWriter();
        w.Expr(expr);
        return w.ToString();
    }

    /// <summary>
    /// Formats a statement. Every statement kind is supported except <see cref="CommentStatement"/>, whose
    /// tree keeps nothing to print (it throws <see cref="NotSupportedException"/>).
    /// </summary>
    public static string Format(Statement statement)
    {
        ArgumentNullException.ThrowIfNull(statement);
        var w = new SqlWriter();
        w.Statement(statement);
        return w.ToString();
    }

    /// <summary>Formats a type name ("character varying(20)", "int4[]", "timestamp(3) with time zone").</summary>
    public static string Format(TypeName type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var w = new SqlWriter();
        w.Type(type);
        return w.ToString();
    }

    /// <summary>
    /// PostgreSQL's quote_ident: the name unchanged when it is a lowercase identifier (letters, digits,
    /// underscores, not starting with a digit) that is not a keyword needing quotes; otherwise double-quoted
    /// with embedded quotes doubled.
    /// </summary>
    public static string QuoteIdentifier(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (IsSafeIdentifier(name) && !Keywords.NeedsQuoting(name))
        {
            return name;
        }

        var sb = new StringBuilder(name.Length + 2);
        sb.Append('"');
        foreach (var c in name)
        {
            if (c == '"')
            {
                sb.Append('"');
            }

            sb.Append(c);
        }

        return sb.Append('"').ToString();
    }

    /// <summary>Lowercase letters, digits and underscores, not starting with a digit, not empty.</summary>
    internal static bool IsSafeIdentifier(string name)
    {
        if (name.Length == 0 || !(name[0] is (>= 'a' and <= 'z') or '_'))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
