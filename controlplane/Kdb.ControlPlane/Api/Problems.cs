namespace Kdb.ControlPlane.Api;

/// <summary>RFC 7807 problem details with stable <c>type</c> URIs.</summary>
public static class Problems
{
    public const string TypeBase = "https://kdb.cloud/problems/";

    public static IResult Validation(IDictionary<string, string[]> errors) =>
        Results.ValidationProblem(errors, type: TypeBase + "validation", title: "The request is not valid.");

    public static IResult Conflict(string type, string detail) =>
        Results.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: "Conflict", type: TypeBase + type);

    public static IResult NotFound(string detail = "Not found.") =>
        Results.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found", type: TypeBase + "not-found");

    public static IResult Unauthorized() =>
        Results.Problem("Authentication is required.", statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", type: TypeBase + "unauthorized");
}
