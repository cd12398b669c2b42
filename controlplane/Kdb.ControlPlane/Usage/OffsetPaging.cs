using System.Globalization;
using Kdb.ControlPlane.Api;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Paging of rows the control plane computes rather than reads in key order (invoice lines, quota rows): the cursor
/// is the position of the next row. Both parameters arrive as text so that a mangled one is a validation problem
/// naming it, not the framework's bare 400.
/// </summary>
public static class OffsetPaging
{
    public const string CursorDescription = "Opaque: the nextCursor of the previous page. Absent for the first page.";

    /// <summary>Reads <paramref name="cursor"/> and <paramref name="limit"/>; a bad one gives a problem instead.</summary>
    public static bool TryRead(string? cursor, string? limit, int defaultLimit, int maxLimit, out int offset, out int take, out IResult? problem)
    {
        offset = 0;
        take = defaultLimit;
        problem = null;
        var errors = new Dictionary<string, string[]>();
        if (cursor is not null && (!int.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset <= 0))
        {
            errors["cursor"] = ["not a cursor of this list"];
        }

        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out take) || take < 1 || take > maxLimit))
        {
            errors["limit"] = [$"limit is a whole number from 1 to {maxLimit.ToString(CultureInfo.InvariantCulture)}"];
        }

        if (errors.Count == 0)
        {
            return true;
        }

        problem = Problems.Validation(errors);
        return false;
    }

    /// <summary>The cursor of the page after the one of <paramref name="take"/> rows from <paramref name="offset"/>, if rows remain.</summary>
    public static string? NextCursor(int offset, int take, int count) =>
        offset + take < count ? (offset + take).ToString(CultureInfo.InvariantCulture) : null;
}
