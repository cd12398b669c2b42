namespace Kdb.Sql.Syntax.Tests;

public class ExpressionParserTests
{
    private static Expr E(string sql) => SqlParser.ParseExpression(sql);

    [Fact]
    public void ParseExpression_MultiplicationAndAddition_MultiplicationBindsTighter()
    {
        var b = Assert.IsType<BinaryExpr>(E("1 + 2 * 3"));
        Assert.Equal(BinaryOp.Add, b.Op);
        Assert.Equal(BinaryOp.Multiply, Assert.IsType<BinaryExpr>(b.Right).Op);
    }

    [Fact]
    public void ParseExpression_Subtraction_IsLeftAssociative()
    {
        var b = Assert.IsType<BinaryExpr>(E("a - b - c"));
        Assert.Equal("c", Assert.IsType<ColumnRefExpr>(b.Right).Column);
        Assert.Equal(BinaryOp.Subtract, Assert.IsType<BinaryExpr>(b.Left).Op);
    }

    [Fact]
    public void ParseExpression_UnaryMinusAndPower_MinusBindsTighter()
    {
        // PostgreSQL: -2 ^ 2 = 4 (unary minus above ^).
        var b = Assert.IsType<BinaryExpr>(E("-x ^ 2"));
        Assert.Equal(BinaryOp.Power, b.Op);
        Assert.Equal(UnaryOp.Negate, Assert.IsType<UnaryExpr>(b.Left).Op);
    }

    [Fact]
    public void ParseExpression_CastAndUnaryMinus_CastBindsTighter()
    {
        var u = Assert.IsType<UnaryExpr>(E("-1::int"));
        Assert.IsType<CastExpr>(u.Operand);
    }

    [Fact]
    public void ParseExpression_NegativeNumber_FoldsIntoLiteral()
    {
        var l = Assert.IsType<LiteralExpr>(E("-9223372036854775808"));
        Assert.Equal(LiteralKind.Integer, l.Kind);
        Assert.Equal("-9223372036854775808", l.Text);
        Assert.Equal(LiteralKind.Decimal, Assert.IsType<LiteralExpr>(E("-1.5")).Kind);
        Assert.IsType<UnaryExpr>(E("-(1)"));
    }

    [Fact]
    public void ParseExpression_ConcatAndComparison_ConcatBindsTighter()
    {
        var b = Assert.IsType<BinaryExpr>(E("a || b = c"));
        Assert.Equal(BinaryOp.Equal, b.Op);
        Assert.Equal(BinaryOp.Concat, Assert.IsType<BinaryExpr>(b.Left).Op);
    }

    [Fact]
    public void ParseExpression_ConcatAndAddition_AdditionBindsTighter()
    {
        var b = Assert.IsType<BinaryExpr>(E("a || b + c"));
        Assert.Equal(BinaryOp.Concat, b.Op);
        Assert.Equal(BinaryOp.Add, Assert.IsType<BinaryExpr>(b.Right).Op);
    }

    [Fact]
    public void ParseExpression_JsonArrows_AreOtherOperatorsLeftAssociative()
    {
        var b = Assert.IsType<BinaryExpr>(E("j -> 'a' ->> 'b'"));
        Assert.Equal(BinaryOp.JsonGetText, b.Op);
        Assert.Equal(BinaryOp.JsonGet, Assert.IsType<BinaryExpr>(b.Left).Op);
    }

    [Fact]
    public void ParseExpression_NotAndComparison_NotIsLooser()
    {
        var u = Assert.IsType<UnaryExpr>(E("NOT a = b"));
        Assert.Equal(UnaryOp.Not, u.Op);
        Assert.Equal(BinaryOp.Equal, Assert.IsType<BinaryExpr>(u.Operand).Op);
    }

    [Fact]
    public void ParseExpression_AndOr_AndBindsTighter()
    {
        var b = Assert.IsType<BinaryExpr>(E("a OR b AND c"));
        Assert.Equal(BinaryOp.Or, b.Op);
        Assert.Equal(BinaryOp.And, Assert.IsType<BinaryExpr>(b.Right).Op);
    }

    [Fact]
    public void ParseExpression_IsNullAfterComparison_AppliesToComparison()
    {
        var n = Assert.IsType<IsNullExpr>(E("a = b IS NULL"));
        Assert.IsType<BinaryExpr>(n.Operand);
    }

    [Fact]
    public void ParseExpression_BetweenWithAnd_BindsBoundsFirst()
    {
        var b = Assert.IsType<BinaryExpr>(E("x BETWEEN 1 AND 2 AND y"));
        Assert.Equal(BinaryOp.And, b.Op);
        var between = Assert.IsType<BetweenExpr>(b.Left);
        Assert.Equal("2", Assert.IsType<LiteralExpr>(between.High).Text);
    }

    [Fact]
    public void ParseExpression_LikeAndConcat_ConcatBindsTighter()
    {
        var b = Assert.IsType<BinaryExpr>(E("a LIKE b || '%' ESCAPE '!'"));
        Assert.Equal(BinaryOp.Like, b.Op);
        Assert.Equal(BinaryOp.Concat, Assert.IsType<BinaryExpr>(b.Right).Op);
        Assert.NotNull(b.Escape);
    }

    [Fact]
    public void ParseExpression_NotVariants_MapToNegatedNodes()
    {
        Assert.Equal(BinaryOp.NotLike, Assert.IsType<BinaryExpr>(E("a NOT LIKE b")).Op);
        Assert.Equal(BinaryOp.NotILike, Assert.IsType<BinaryExpr>(E("a NOT ILIKE b")).Op);
        Assert.True(Assert.IsType<InListExpr>(E("a NOT IN (1)")).Negated);
        Assert.True(Assert.IsType<BetweenExpr>(E("a NOT BETWEEN 1 AND 2")).Negated);
        Assert.True(Assert.IsType<ExistsExpr>(E("NOT EXISTS (SELECT 1)")).Negated);
        Assert.True(Assert.IsType<IsNullExpr>(E("a NOTNULL")).Negated);
        Assert.False(Assert.IsType<IsNullExpr>(E("a ISNULL")).Negated);
        Assert.Null(Assert.IsType<IsBoolExpr>(E("a IS NOT UNKNOWN")).Value);
    }

    [Fact]
    public void ParseExpression_Quantified_ArrayAndSubquery()
    {
        var q = Assert.IsType<QuantifiedExpr>(E("a = ANY ($1)"));
        Assert.False(q.All);
        Assert.IsType<ParameterExpr>(q.Array);
        var all = Assert.IsType<QuantifiedExpr>(E("a <> ALL (SELECT b FROM t)"));
        Assert.True(all.All);
        Assert.Equal(BinaryOp.NotEqual, all.Op);
        Assert.NotNull(all.Query);
    }

    [Fact]
    public void ParseExpression_OperatorSyntax_MapsToPlainOperator()
    {
        var b = Assert.IsType<BinaryExpr>(E("c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default"));
        Assert.Equal(BinaryOp.RegexMatch, b.Op);
        Assert.Equal("default", Assert.IsType<CollateExpr>(b.Right).Collation);
    }

    [Fact]
    public void ParseExpression_Extract_NormalizedToStringField()
    {
        var f = Assert.IsType<FunctionCallExpr>(E("EXTRACT(YEAR FROM ts)"));
        Assert.Equal(["extract"], f.Name);
        Assert.Equal("year", Assert.IsType<LiteralExpr>(f.Arguments[0]).Text);
        Assert.Equal("ts", Assert.IsType<ColumnRefExpr>(f.Arguments[1]).Column);
    }

    [Fact]
    public void ParseExpression_SpecialCallSyntaxes_Normalized()
    {
        var s = Assert.IsType<FunctionCallExpr>(E("SUBSTRING(x FROM 2 FOR 3)"));
        Assert.Equal("substring", s.SimpleName);
        Assert.Equal(3, s.Arguments.Count);
        var t = Assert.IsType<FunctionCallExpr>(E("TRIM(LEADING 'x' FROM y)"));
        Assert.Equal("ltrim", t.SimpleName);
        Assert.Equal("y", Assert.IsType<ColumnRefExpr>(t.Arguments[0]).Column);
        Assert.Equal("x", Assert.IsType<LiteralExpr>(t.Arguments[1]).Text);
        Assert.Equal("btrim", Assert.IsType<FunctionCallExpr>(E("trim(y)")).SimpleName);
        Assert.Equal("rtrim", Assert.IsType<FunctionCallExpr>(E("trim(trailing from y)")).SimpleName);
        var p = Assert.IsType<FunctionCallExpr>(E("POSITION('b' IN s)"));
        Assert.Equal("position", p.SimpleName);
        Assert.Equal("b", Assert.IsType<LiteralExpr>(p.Arguments[0]).Text);
        var tz = Assert.IsType<FunctionCallExpr>(E("ts AT TIME ZONE 'UTC'"));
        Assert.Equal("timezone", tz.SimpleName);
        Assert.Equal("UTC", Assert.IsType<LiteralExpr>(tz.Arguments[0]).Text);
    }

    [Theory]
    [InlineData("CURRENT_TIMESTAMP", "current_timestamp")]
    [InlineData("current_date", "current_date")]
    [InlineData("LOCALTIMESTAMP", "localtimestamp")]
    [InlineData("CURRENT_USER", "current_user")]
    [InlineData("SESSION_USER", "session_user")]
    [InlineData("USER", "user")]
    [InlineData("CURRENT_SCHEMA", "current_schema")]
    [InlineData("CURRENT_CATALOG", "current_catalog")]
    public void ParseExpression_SqlValueFunction_IsCallWithoutParentheses(string sql, string name)
    {
        var f = Assert.IsType<FunctionCallExpr>(E(sql));
        Assert.Equal([name], f.Name);
        Assert.True(f.NoParentheses);
        Assert.Empty(f.Arguments);
    }

    [Fact]
    public void ParseExpression_CurrentSchemaWithParentheses_IsOrdinaryCall()
    {
        Assert.False(Assert.IsType<FunctionCallExpr>(E("current_schema()")).NoParentheses);
        Assert.Equal(["pg_catalog", "current_schemas"], Assert.IsType<FunctionCallExpr>(E("pg_catalog.current_schemas(true)")).Name);
    }

    [Fact]
    public void ParseExpression_CountStar_HasStarAndNoArguments()
    {
        var f = Assert.IsType<FunctionCallExpr>(E("count(*)"));
        Assert.True(f.Star);
        Assert.Empty(f.Arguments);
    }

    [Fact]
    public void ParseExpression_AggregateOrderAndWithinGroup_AreDistinguished()
    {
        var a = Assert.IsType<FunctionCallExpr>(E("string_agg(x, ',' ORDER BY y DESC)"));
        Assert.False(a.WithinGroup);
        Assert.True(Assert.Single(a.OrderWithin!).Descending);
        var w = Assert.IsType<FunctionCallExpr>(E("percentile_disc(0.5) WITHIN GROUP (ORDER BY y)"));
        Assert.True(w.WithinGroup);
    }

    [Fact]
    public void ParseExpression_WindowFrame_SingleBoundEndsAtCurrentRow()
    {
        var f = Assert.IsType<FunctionCallExpr>(E("sum(x) OVER (PARTITION BY a ORDER BY b ROWS 3 PRECEDING)"));
        var frame = f.Over!.Frame!;
        Assert.Equal("rows", frame.Units);
        Assert.Equal(FrameBoundKind.Preceding, frame.Start.Kind);
        Assert.Equal(FrameBoundKind.CurrentRow, frame.End.Kind);
        Assert.Equal("w", Assert.IsType<FunctionCallExpr>(E("rank() OVER w")).Over!.Name);
    }

    [Theory]
    [InlineData("'x'::varchar(20)", "varchar", new[] { 20 }, 0)]
    [InlineData("'1'::numeric(10, 2)", "numeric", new[] { 10, 2 }, 0)]
    [InlineData("'1'::numeric(3,-1)", "numeric", new[] { 3, -1 }, 0)]
    [InlineData("'1'::decimal(2, - 3)", "decimal", new[] { 2, -3 }, 0)]
    [InlineData("'{}'::int[]", "int", new int[0], 1)]
    [InlineData("'{}'::text[][]", "text", new int[0], 2)]
    [InlineData("'1'::double precision", "double precision", new int[0], 0)]
    [InlineData("'x'::character varying(5)", "character varying", new[] { 5 }, 0)]
    [InlineData("'x'::char varying", "character varying", new int[0], 0)]
    [InlineData("'t'::timestamp(3) with time zone", "timestamp with time zone", new[] { 3 }, 0)]
    [InlineData("'t'::TIMESTAMP WITHOUT TIME ZONE", "timestamp without time zone", new int[0], 0)]
    [InlineData("'t'::time with time zone", "time with time zone", new int[0], 0)]
    [InlineData("'1'::pg_catalog.int4", "int4", new int[0], 0)]
    [InlineData("'1'::pg_catalog.int2[]", "int2", new int[0], 1)]
    [InlineData("'1'::myschema.mytype", "myschema.mytype", new int[0], 0)]
    [InlineData("'1'::\"MyType\"", "MyType", new int[0], 0)]
    [InlineData("'1'::integer ARRAY", "integer", new int[0], 1)]
    [InlineData("'x'::char(3)", "character", new[] { 3 }, 0)]
    [InlineData("'x'::\"char\"", "char", new int[0], 0)]
    public void ParseExpression_Cast_CanonicalTypeName(string sql, string name, int[] modifiers, int dims)
    {
        var c = Assert.IsType<CastExpr>(E(sql));
        Assert.Equal(name, c.Type.Name);
        Assert.Equal(modifiers, c.Type.Modifiers);
        Assert.Equal(dims, c.Type.ArrayDimensions);
    }

    [Theory]
    [InlineData("DATE '2024-01-01'", "date")]
    [InlineData("interval '1 day'", "interval")]
    [InlineData("timestamp with time zone '2024-01-01'", "timestamp with time zone")]
    [InlineData("double precision '1'", "double precision")]
    [InlineData("int4 '1'", "int4")]
    public void ParseExpression_TypedLiteral_IsCastOfString(string sql, string type)
    {
        var c = Assert.IsType<CastExpr>(E(sql));
        Assert.Equal(type, c.Type.Name);
        Assert.Equal(LiteralKind.String, Assert.IsType<LiteralExpr>(c.Operand).Kind);
    }

    [Fact]
    public void ParseExpression_ColumnNamedLikeType_IsColumn()
    {
        Assert.Equal("date", Assert.IsType<ColumnRefExpr>(E("date")).Column);
        Assert.Equal("time", Assert.IsType<ColumnRefExpr>(Assert.IsType<BinaryExpr>(E("time + 1")).Left).Column);
    }

    [Fact]
    public void ParseExpression_Identifiers_FoldedUnlessQuoted()
    {
        var c = Assert.IsType<ColumnRefExpr>(E("MyTable.\"MyCol\""));
        Assert.Equal(["mytable", "MyCol"], c.Parts);
        Assert.Equal(["a\"b"], Assert.IsType<ColumnRefExpr>(E("\"a\"\"b\"")).Parts);
        Assert.Equal("Ünï", Assert.IsType<ColumnRefExpr>(E("\"Ünï\"")).Column);
        Assert.Equal("Ünï", Assert.IsType<ColumnRefExpr>(E("Ünï")).Column);
    }

    [Fact]
    public void ParseExpression_Star_QualifiedByTable()
    {
        var s = Assert.IsType<StarExpr>(Assert.IsType<SelectStatement>(SqlParser.Parse("SELECT t.* FROM t")).Body switch
        {
            SelectCore core => core.Items[0].Expression,
            _ => throw new InvalidOperationException(),
        });
        Assert.Equal("t", s.Qualifier);
    }

    [Fact]
    public void ParseExpression_RowsAndArrays_Shapes()
    {
        Assert.Equal(2, Assert.IsType<RowExpr>(E("(1, 2)")).Elements.Count);
        Assert.Single(Assert.IsType<RowExpr>(E("ROW(1)")).Elements);
        var nested = Assert.IsType<ArrayExpr>(E("ARRAY[[1, 2], [3]]"));
        Assert.IsType<ArrayExpr>(nested.Elements[0]);
        Assert.IsType<ArraySubqueryExpr>(E("ARRAY(SELECT 1)"));
        var sub = Assert.IsType<SubscriptExpr>(E("a[1]"));
        Assert.Equal("a", Assert.IsType<ColumnRefExpr>(sub.Operand).Column);
        Assert.IsType<ScalarSubqueryExpr>(E("(SELECT 1)"));
        Assert.IsType<LiteralExpr>(E("((1))"));
    }

    [Fact]
    public void ParseExpression_Positions_AreOneBasedOffsets()
    {
        var b = Assert.IsType<BinaryExpr>(E("  a  + b"));
        Assert.Equal(6, b.Position);
        Assert.Equal(3, b.Left.Position);
        Assert.Equal(8, b.Right.Position);
        var c = Assert.IsType<CastExpr>(E("x::int"));
        Assert.Equal(2, c.Position);
        Assert.Equal(4, c.Type.Position);
        var f = Assert.IsType<FunctionCallExpr>(E("  pg_catalog.f(1)"));
        Assert.Equal(3, f.Position);
    }

    [Fact]
    public void ParseExpression_Literals_DecodedText()
    {
        Assert.Equal("it's", Assert.IsType<LiteralExpr>(E("'it''s'")).Text);
        Assert.Equal("a\tb\n\\'A\u00e9", Assert.IsType<LiteralExpr>(E("E'a\\tb\\n\\\\\\'\\x41\\u00e9'")).Text);
        Assert.Equal("a\\n", Assert.IsType<LiteralExpr>(E("'a\\n'")).Text);
        Assert.Equal("x'y", Assert.IsType<LiteralExpr>(E("$$x'y$$")).Text);
        Assert.Equal("a$$b", Assert.IsType<LiteralExpr>(E("$q$a$$b$q$")).Text);
        Assert.Equal("ab", Assert.IsType<LiteralExpr>(E("'a'\n  'b'")).Text);
        Assert.Equal(LiteralKind.Decimal, Assert.IsType<LiteralExpr>(E("1.5e3")).Kind);
        Assert.Equal(".5", Assert.IsType<LiteralExpr>(E(".5")).Text);
        Assert.Equal(LiteralKind.Integer, Assert.IsType<LiteralExpr>(E("123456789012345678901234567890")).Kind);
        Assert.Equal(12, Assert.IsType<ParameterExpr>(E("$12")).Number);
        Assert.Equal("true", Assert.IsType<LiteralExpr>(E("TRUE")).Text);
        Assert.Equal(LiteralKind.Null, Assert.IsType<LiteralExpr>(E("null")).Kind);
    }

    [Fact]
    public void ParseExpression_OperatorWithTrailingMinus_SplitsLikePostgres()
    {
        var b = Assert.IsType<BinaryExpr>(E("a=-1"));
        Assert.Equal(BinaryOp.Equal, b.Op);
        Assert.Equal("-1", Assert.IsType<LiteralExpr>(b.Right).Text);
        Assert.Equal(BinaryOp.NotEqual, Assert.IsType<BinaryExpr>(E("a != b")).Op);
    }

    [Fact]
    public void ParseTypeName_Standalone_Parses()
    {
        var t = SqlParser.ParseTypeName("numeric(10,2)");
        Assert.Equal("numeric", t.Name);
        Assert.Equal([10, 2], t.Modifiers);
        Assert.Equal(1, SqlParser.ParseTypeName("int[]").ArrayDimensions);
        Assert.Equal("character varying", SqlParser.ParseTypeName("CHARACTER VARYING(20)").Name);
    }
}
