namespace Kdb.Sql.Syntax.Parsing;

/// <summary>
/// Binding strength of expression forms, loosest first, from PostgreSQL 15's gram.y precedence
/// declarations. Shared by the parser (what an operand may contain) and the formatter (where to
/// put parentheses), so a formatted tree re-parses to itself.
/// </summary>
internal static class Precedence
{
    public const int Lowest = 0;
    public const int Or = 1;
    public const int And = 2;
    public const int Not = 3;

    /// <summary>IS [NOT] NULL/TRUE/DISTINCT FROM, ISNULL, NOTNULL (non-associative).</summary>
    public const int Is = 4;

    /// <summary>&lt; &gt; = &lt;= &gt;= &lt;&gt; (non-associative).</summary>
    public const int Comparison = 5;

    /// <summary>BETWEEN, IN, LIKE, ILIKE, SIMILAR (non-associative).</summary>
    public const int Predicate = 6;

    /// <summary>Every other operator: || -&gt; -&gt;&gt; ~ &amp; | &lt;&lt; @&gt; ? and OPERATOR(...).</summary>
    public const int Other = 7;

    public const int AdditiveLevel = 8;
    public const int Multiplicative = 9;
    public const int Power = 10;
    public const int AtTimeZone = 11;
    public const int Collate = 12;

    /// <summary>Unary minus and plus.</summary>
    public const int Unary = 13;

    /// <summary>:: and [ ].</summary>
    public const int Postfix = 14;

    public const int Primary = 15;
}
