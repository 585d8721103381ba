using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Portal.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Initial : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "Datasets",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Path = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Layout = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    ScannedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    RegistrationRunId = table.Column<long>(type: "bigint", nullable: true),
                    Images = table.Column<int>(type: "integer", nullable: false),
                    IgnoredFiles = table.Column<int>(type: "integer", nullable: false),
                    ContentHash = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    ManifestPath = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    FormatsJson = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    SizesJson = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    LineageJson = table.Column<string>(type: "text", nullable: true, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Datasets", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Runs",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Kind = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Queue = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false, collation: "C"),
                    ConfigJson = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    ConfigHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Progress = table.Column<double>(type: "double precision", nullable: false),
                    Phase = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    FinishedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    HeartbeatAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Error = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Worker = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Seed = table.Column<long>(type: "bigint", nullable: true),
                    CodeVersion = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    CancelRequested = table.Column<bool>(type: "boolean", nullable: false),
                    RerunOf = table.Column<long>(type: "bigint", nullable: true),
                    Tags = table.Column<string>(type: "character varying(657)", maxLength: 657, nullable: false, defaultValue: "", collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Runs", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Weights",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Kind = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false, collation: "C"),
                    Architecture = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Path = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Format = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Bytes = table.Column<long>(type: "bigint", nullable: false),
                    Sha256 = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Card = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    SourceRunId = table.Column<long>(type: "bigint", nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Weights", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "DatasetSubsets",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    DatasetId = table.Column<long>(type: "bigint", nullable: false),
                    Generator = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Split = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Label = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Count = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_DatasetSubsets", x => x.Id);
                    table.ForeignKey(
                        name: "FK_DatasetSubsets_Datasets_DatasetId",
                        column: x => x.DatasetId,
                        principalTable: "Datasets",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "UnreadableFiles",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    DatasetId = table.Column<long>(type: "bigint", nullable: false),
                    Path = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Reason = table.Column<string>(type: "text", nullable: false, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UnreadableFiles", x => x.Id);
                    table.ForeignKey(
                        name: "FK_UnreadableFiles_Datasets_DatasetId",
                        column: x => x.DatasetId,
                        principalTable: "Datasets",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "Artifacts",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    RunId = table.Column<long>(type: "bigint", nullable: true),
                    Kind = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    RelativePath = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Bytes = table.Column<long>(type: "bigint", nullable: false),
                    Sha256 = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Artifacts", x => x.Id);
                    table.ForeignKey(
                        name: "FK_Artifacts_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.SetNull);
                });

            migrationBuilder.CreateTable(
                name: "LeaderboardEntries",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    RunId = table.Column<long>(type: "bigint", nullable: false),
                    Threshold = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Checkpoint = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    DatasetId = table.Column<long>(type: "bigint", nullable: true),
                    Split = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Perturbation = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    ConfigArch = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Seed = table.Column<long>(type: "bigint", nullable: false),
                    MeanAcc = table.Column<double>(type: "double precision", nullable: true),
                    MeanAp = table.Column<double>(type: "double precision", nullable: true),
                    Generators = table.Column<string>(type: "text", nullable: false, collation: "C")
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

            migrationBuilder.CreateTable(
                name: "RunLog",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    RunId = table.Column<long>(type: "bigint", nullable: false),
                    At = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    Level = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Message = table.Column<string>(type: "text", nullable: false, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RunLog", x => x.Id);
                    table.ForeignKey(
                        name: "FK_RunLog_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "RunMetrics",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    RunId = table.Column<long>(type: "bigint", nullable: false),
                    Name = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false, collation: "C"),
                    Step = table.Column<long>(type: "bigint", nullable: false),
                    Value = table.Column<double>(type: "double precision", nullable: false),
                    At = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RunMetrics", x => x.Id);
                    table.ForeignKey(
                        name: "FK_RunMetrics_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Artifacts_RunId",
                table: "Artifacts",
                column: "RunId");

            migrationBuilder.CreateIndex(
                name: "IX_Datasets_Name",
                table: "Datasets",
                column: "Name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Datasets_Path",
                table: "Datasets",
                column: "Path");

            migrationBuilder.CreateIndex(
                name: "IX_DatasetSubsets_DatasetId",
                table: "DatasetSubsets",
                column: "DatasetId");

            migrationBuilder.CreateIndex(
                name: "IX_LeaderboardEntries_RunId_Threshold",
                table: "LeaderboardEntries",
                columns: new[] { "RunId", "Threshold" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_RunLog_RunId_Id",
                table: "RunLog",
                columns: new[] { "RunId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_RunMetrics_RunId_Name_Step",
                table: "RunMetrics",
                columns: new[] { "RunId", "Name", "Step" });

            migrationBuilder.CreateIndex(
                name: "IX_Runs_ConfigHash",
                table: "Runs",
                column: "ConfigHash");

            migrationBuilder.CreateIndex(
                name: "IX_Runs_CreatedAt",
                table: "Runs",
                column: "CreatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_Runs_Status",
                table: "Runs",
                column: "Status");

            migrationBuilder.CreateIndex(
                name: "IX_UnreadableFiles_DatasetId",
                table: "UnreadableFiles",
                column: "DatasetId");

            migrationBuilder.CreateIndex(
                name: "IX_Weights_Name",
                table: "Weights",
                column: "Name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Weights_Path",
                table: "Weights",
                column: "Path");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "Artifacts");

            migrationBuilder.DropTable(
                name: "DatasetSubsets");

            migrationBuilder.DropTable(
                name: "LeaderboardEntries");

            migrationBuilder.DropTable(
                name: "RunLog");

            migrationBuilder.DropTable(
                name: "RunMetrics");

            migrationBuilder.DropTable(
                name: "UnreadableFiles");

            migrationBuilder.DropTable(
                name: "Weights");

            migrationBuilder.DropTable(
                name: "Runs");

            migrationBuilder.DropTable(
                name: "Datasets");
        }
    }
}
