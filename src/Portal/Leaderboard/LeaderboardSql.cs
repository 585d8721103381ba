using System.Text.Json;
using Portal.Store;

namespace Portal.Leaderboard;

/// <summary>
/// The SQL that differs between SQLite and PostgreSQL. The rest is written for both: table and column names quoted
/// (PostgreSQL folds unquoted names to lower case), derived names unquoted, string order binary (PostgreSQL's columns
/// use the "C" collation, see <see cref="PostgresPortalDb"/>).
/// </summary>
sealed record LeaderboardSql(bool Postgres)
{
    /// <summary>True when <paramref name="part"/> occurs in <paramref name="text"/> (case-sensitive).</summary>
    public string Has(string text, string part) => Postgres ? $"strpos({text}, {part}) > 0" : $"instr({text}, {part}) > 0";

    /// <summary>A field of a JSON text column: its value (SQLite's json_extract) or its text (PostgreSQL).</summary>
    public string Json(string json, string field) => Postgres ? $"(({json})::jsonb ->> '{field}')" : $"json_extract({json}, '$.{field}')";

    /// <summary>A whole-number field of a JSON text column; on PostgreSQL null unless it reads as one (SQLite stores it as given).</summary>
    public string JsonInteger(string json, string field) => Postgres
        ? $"(CASE WHEN {Json(json, field)} ~ '^\\s*-?[0-9]+(\\.0*)?\\s*$' THEN trim({Json(json, field)})::numeric::bigint END)"
        : Json(json, field);

    /// <summary>The insert that skips rows a unique index already holds: prefix and suffix.</summary>
    public (string Insert, string OnConflict) InsertOrIgnore => Postgres ? ("INSERT INTO", "ON CONFLICT DO NOTHING") : ("INSERT OR IGNORE INTO", "");

    /// <summary>The values joined by <paramref name="separator"/> in the order of <paramref name="orderBy"/> (SQLite: the rows' order).</summary>
    public string Join(string value, string separator, string orderBy) =>
        Postgres ? $"string_agg({value}, {separator} ORDER BY {orderBy})" : $"group_concat({value}, {separator})";

    /// <summary>The character with code <paramref name="code"/>.</summary>
    public string Char(int code) => Postgres ? $"chr({code})" : $"char({code})";

    /// <summary>An ASCII case-insensitive sort key.</summary>
    public string NoCase(string expression) => Postgres ? $"lower({expression})" : $"{expression} COLLATE NOCASE";

    /// <summary>LIMIT's value for every row.</summary>
    public object NoLimit => Postgres ? DBNull.Value : -1;

    /// <summary>The run ids as a table of one column "value", and the parameter that carries them.</summary>
    public (string Table, object Ids) IdTable(IReadOnlyList<long> ids) => Postgres
        ? ("unnest(@ids) AS j(value)", ids.ToArray())
        : ("json_each(@ids) j", JsonSerializer.Serialize(ids));
}
