namespace Kdb.Portal.Components;

/// <summary>One bar of a <c>SeriesChart</c>: the start of its hour or day and its value.</summary>
public readonly record struct ChartPoint(DateTimeOffset Start, double Value);
