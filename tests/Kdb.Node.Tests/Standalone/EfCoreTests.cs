using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// An EF Core model with a migration (Npgsql.EntityFrameworkCore.PostgreSQL, the control plane's provider) applied
/// against the standalone node: the migrations history table, an identity column, a unique index, then CRUD, and a
/// second migrate that finds nothing to do.
/// </summary>
[Collection(StandaloneCollection.Name)]
public sealed class EfCoreTests(StandaloneNodeFixture fixture)
{
    [Fact]
    public async Task Migrate_ThenCrud_ThenMigrateAgain_IsANoOp()
    {
        // The node is fresh for each test run, so the history table and the migration's table start absent.
        var connectionString = fixture.Node.ConnectionString(extra: "Pooling=false");
        await using (var db = new ShopContext(connectionString))
        {
            Assert.Equal([InitialShop.Id], await db.Database.GetPendingMigrationsAsync());
            await db.Database.MigrateAsync();

            db.Products.Add(new Product { Name = "apple", Price = 1.25m });
            db.Products.Add(new Product { Name = "pear", Price = 2.5m });
            await db.SaveChangesAsync();
            var pear = await db.Products.SingleAsync(p => p.Price > 2m);
            pear.Price = 3m;
            await db.SaveChangesAsync();
            db.Products.Remove(await db.Products.SingleAsync(p => p.Name == "apple"));
            await db.SaveChangesAsync();

            var rows = await db.Products.OrderBy(p => p.Id).Select(p => new { p.Name, p.Price }).ToListAsync();
            Assert.Equal([new { Name = "pear", Price = 3.00m }], rows);

            // The unique index of the migration holds.
            db.Products.Add(new Product { Name = "pear", Price = 1m });
            var duplicate = await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
            Assert.Equal("23505", Assert.IsType<Npgsql.PostgresException>(duplicate.InnerException).SqlState);
        }

        await using (var again = new ShopContext(connectionString))
        {
            Assert.Empty(await again.Database.GetPendingMigrationsAsync());
            await again.Database.MigrateAsync();
            Assert.Equal([InitialShop.Id], await again.Database.GetAppliedMigrationsAsync());
        }
    }

    public sealed class Product
    {
        public int Id { get; set; }

        public string Name { get; set; } = string.Empty;

        public decimal Price { get; set; }
    }

    public sealed class ShopContext(string connectionString) : DbContext
    {
        public DbSet<Product> Products => Set<Product>();

        protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder) =>
            optionsBuilder
                .UseNpgsql(connectionString)

                // The migration below is written by hand, without a model snapshot.
                .ConfigureWarnings(w => w.Ignore(RelationalEventId.PendingModelChangesWarning));

        protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Product>(e =>
        {
            e.ToTable("ef_products");
            e.Property(p => p.Name).HasMaxLength(40).IsRequired();
            e.Property(p => p.Price).HasPrecision(10, 2);
            e.HasIndex(p => p.Name).IsUnique();
        });
    }

    [DbContext(typeof(ShopContext))]
    [Migration(Id)]
    public sealed class InitialShop : Migration
    {
        public const string Id = "20261201000000_InitialShop";

        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                "ef_products",
                t => new
                {
                    Id = t.Column<int>(type: "integer", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", Npgsql.EntityFrameworkCore.PostgreSQL.Metadata.NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Name = t.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Price = t.Column<decimal>(type: "numeric(10,2)", precision: 10, scale: 2, nullable: false),
                },
                constraints: t => t.PrimaryKey("PK_ef_products", p => p.Id));
            migrationBuilder.CreateIndex("IX_ef_products_Name", "ef_products", "Name", unique: true);
        }

        protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable("ef_products");
    }
}
