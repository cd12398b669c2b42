using Microsoft.AspNetCore.Http.Features;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// Request bodies are at most 1 MiB (usage ingestion, whose batches of up to 10,000 records are larger,
/// 16 MiB). A declared Content-Length over the limit is refused before reading; a chunked body is counted
/// as it is read and refused once it passes the limit. Either way the answer is a 413 problem.
/// </summary>
public static class RequestSizeLimits
{
    public const long DefaultLimit = 1024 * 1024;
    public const long UsageLimit = 16 * 1024 * 1024;

    public static IApplicationBuilder UseRequestSizeLimits(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var limit = context.Request.Path.StartsWithSegments("/internal/v1/usage", StringComparison.Ordinal) ? UsageLimit : DefaultLimit;
        if (context.Request.ContentLength > limit)
        {
            await TooLarge(limit).ExecuteAsync(context);
            return;
        }

        // Kestrel enforces the limit itself where it can; the counting stream covers hosts that do not
        // (the test server) and is cheap: it only adds a length check per read.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit;
        }

        if (context.Request.ContentLength is null && context.Request.Body.CanRead)
        {
            context.Request.Body = new LimitedReadStream(context.Request.Body, limit);
        }

        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge && !context.Response.HasStarted)
        {
            context.Response.Clear();
            await TooLarge(limit).ExecuteAsync(context);
        }
    });

    private static IResult TooLarge(long limit) =>
        Results.Problem($"The request body is larger than {limit / 1024} KiB.", statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload too large", type: Problems.TypeBase + "payload-too-large");

    /// <summary>Throws a 413 <see cref="BadHttpRequestException"/> once more than <c>limit</c> bytes have been read.</summary>
    private sealed class LimitedReadStream(Stream inner, long limit) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int n)
        {
            _read += n;
            return _read > limit
                ? throw new BadHttpRequestException($"The request body is larger than {limit} bytes.", StatusCodes.Status413PayloadTooLarge)
                : n;
        }
    }
}
