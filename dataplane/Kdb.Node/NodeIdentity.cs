using System.Security.Cryptography;
using System.Text;

namespace Kdb.Node;

/// <summary>The node's stable id, created once and kept in its data directory (DESIGN: node id).</summary>
public sealed record NodeIdentity(string NodeId, string DataDirectory)
{
    private const string FileName = "node-id";

    /// <summary>Reads the id from the data directory, creating it on first start.</summary>
    public static NodeIdentity LoadOrCreate(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        if (File.Exists(path))
        {
            var existing = File.ReadAllText(path, Encoding.UTF8).Trim();
            if (existing.StartsWith("node_", StringComparison.Ordinal) && existing.Length > 5)
            {
                return new NodeIdentity(existing, dataDirectory);
            }

            throw new InvalidDataException($"{path} does not hold a node id ('{existing}'); refusing to invent a new identity for existing data.");
        }

        var id = "node_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Encoding.UTF8.GetBytes(id));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: false);
        return new NodeIdentity(id, dataDirectory);
    }
}
