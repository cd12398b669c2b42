using Microsoft.AspNetCore.Connections;

namespace Kdb.Proxy.Pg;

/// <summary>Kestrel's side of the tenant PostgreSQL port: each accepted connection runs a <see cref="PgFrontConnection"/>.</summary>
internal sealed class PgFrontHandler(PgFrontServices services) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => new PgFrontConnection(connection, services).RunAsync();
}
