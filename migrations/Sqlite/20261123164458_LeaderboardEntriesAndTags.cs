using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Portal.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class LeaderboardEntriesAndTags : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Tags",
                table: "Runs",
                type: "TEXT",
                maxLength: 657,
                nullable: false,
                defaultValue: "");

            migrationBuilder.CreateTable(
                name: "LeaderboardEntries",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    RunId = table.Column<long>(type: "INTEGER", nullable: false),
                    Threshold = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Checkpoint = table.Column<string>(type: "TEXT", nullable: false),
                    DatasetId = table.Column<long>(type: "INTEGER", nullable: true),
                    Split = table.Column<string>(type: "TEXT", nullable: false),
                    Perturbation = table.Column<string>(type: "TEXT", nullable: false),
                    ConfigArch = table.Column<string>(type: "TEXT", nullable: false),
                    Seed = table.Column<long>(type: "INTEGER", nullable: false),
                    MeanAcc = table.Column<double>(type: "REAL", nullable: true),
                    MeanAp = table.Column<double>(type: "REAL", nullable: true),
                    Generators = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_LeaderboardEntries", x => x.Id);
                    table.ForeignKey(
                        name: "FK_LeaderboardEntries_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Weights_Path",
                table: "Weights",
                column: "Path");

            migrationBuilder.CreateIndex(
                name: "IX_LeaderboardEntries_RunId_Threshold",
                table: "LeaderboardEntries",
                columns: new[] { "RunId", "Threshold" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "LeaderboardEntries");

            migrationBuilder.DropIndex(
                name: "IX_Weights_Path",
                table: "Weights");

            migrationBuilder.DropColumn(
                name: "Tags",
                table: "Runs");
        }
    }
}
