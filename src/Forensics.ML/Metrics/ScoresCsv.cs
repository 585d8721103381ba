using System.Globalization;
using System.Text;

namespace Forensics.ML.Metrics;

/// <summary>One scored image: its label (0 = real, 1 = fake), its score P(fake), and every column of its CSV row.</summary>
public sealed record ScoreRow(string? Path, int Label, double Score)
{
    /// <summary>All fields of the row by header name (label and score included, as written); empty for rows built in code.</summary>
    public IReadOnlyDictionary<string, string> Columns { get; init; } = new Dictionary<string, string>();
}

/// <summary>A scores CSV as read: its header in file order and its rows.</summary>
public sealed record ScoresTable(string FilePath, IReadOnlyList<string> Header, IReadOnlyList<ScoreRow> Rows)
{
    /// <summary>The labels in row order.</summary>
    public IReadOnlyList<int> Labels => Rows.Select(r => r.Label).ToArray();

    /// <summary>The scores in row order.</summary>
    public IReadOnlyList<double> Scores => Rows.Select(r => r.Score).ToArray();
}

/// <summary>A malformed scores CSV; the message names the file, the line and the column.</summary>
public sealed class ScoresCsvException(string filePath, int line, string? column, string message)
    : FormatException($"{filePath}:{line}{(column is null ? "" : $": column '{column}'")}: {message}")
{
    /// <summary>The file that failed to parse.</summary>
    public string FilePath { get; } = filePath;
    /// <summary>1-based line number (of the record's first line for quoted fields spanning lines).</summary>
    public int Line { get; } = line;
    /// <summary>The column at fault, or null when the fault is not in one column.</summary>
    public string? Column { get; } = column;
}

/// <summary>
/// Reads and writes score files: CSV (RFC 4180 quoting) with a header naming at least <c>label</c> and <c>score</c>, in
/// any order and any letter case; other columns (e.g. <c>path</c>) are kept. Numbers use the invariant culture. Text cells
/// are neutralised against spreadsheet formula injection when written and restored when read (<see cref="Forensics.ML.Data.CsvCell"/>).
/// </summary>
public static class ScoresCsv
{
    /// <summary>Reads a scores CSV.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ScoresCsvException">A missing column, a wrong field count, a non-numeric or NaN score, a label not 0/1, or a broken quote.</exception>
    public static ScoresTable Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"scores file not found: {path}", path);
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var records = ParseRecords(reader, path).GetEnumerator();

        if (!records.MoveNext()) throw new ScoresCsvException(path, 1, null, "the file is empty; expected a header with columns 'label' and 'score'");
        var (headerLine, header) = records.Current;
        header = header.Select(h => h.Trim()).ToList();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var h in header)
            if (!seen.Add(h)) throw new ScoresCsvException(path, headerLine, h, "the header names this column twice");
        int labelCol = IndexOf(header, "label", path, headerLine);
        int scoreCol = IndexOf(header, "score", path, headerLine);
        int pathCol = header.FindIndex(h => h.Equals("path", StringComparison.OrdinalIgnoreCase));

        var rows = new List<ScoreRow>();
        while (records.MoveNext())
        {
            var (line, fields) = records.Current;
            if (fields.Count == 1 && fields[0].Length == 0) continue; // a blank line
            if (fields.Count != header.Count)
                throw new ScoresCsvException(path, line, null, $"{fields.Count} fields but the header has {header.Count}");
            int label = ParseLabel(fields[labelCol], path, line, header[labelCol]);
            double score = ParseScore(fields[scoreCol], path, line, header[scoreCol]);
            var columns = new Dictionary<string, string>(header.Count, StringComparer.OrdinalIgnoreCase);
            // Text cells come back as they were before Write neutralised them against formula injection ('=x -> =x).
            for (int c = 0; c < header.Count; c++) columns[header[c]] = global::Forensics.ML.Data.CsvCell.Unescape(fields[c]);
            rows.Add(new ScoreRow(pathCol >= 0 ? global::Forensics.ML.Data.CsvCell.Unescape(fields[pathCol]) : null, label, score) { Columns = columns });
        }
        return new ScoresTable(path, header, rows);
    }

    /// <summary>Writes rows as CSV with columns path,label,score; scores in shortest round-trip form ("R"), invariant culture.</summary>
    public static void Write(string path, IEnumerable<ScoreRow> rows)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(rows);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        writer.NewLine = "\n";
        writer.WriteLine("path,label,score");
        int index = 0;
        foreach (var row in rows)
        {
            if (row.Label is not (0 or 1))
                throw new ArgumentException($"rows[{index}] has label {row.Label}; expected 0 (real) or 1 (fake)", nameof(rows));
            if (double.IsNaN(row.Score)) throw new ArgumentException($"rows[{index}] has a NaN score", nameof(rows));
            writer.Write(global::Forensics.ML.Data.CsvCell.Escape(row.Path));
            writer.Write(',');
            writer.Write(row.Label.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.WriteLine(row.Score.ToString("R", CultureInfo.InvariantCulture));
            index++;
        }
    }

    private static int IndexOf(List<string> header, string name, string path, int line)
    {
        int i = header.FindIndex(h => h.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (i < 0)
            throw new ScoresCsvException(path, line, name, $"missing column; the header has: {string.Join(", ", header)}");
        return i;
    }

    private static int ParseLabel(string field, string path, int line, string column)
    {
        // Accept 0/1 also when written as floats (pandas writes 1.0 for a float column).
        if (double.TryParse(field.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && (v == 0 || v == 1))
            return (int)v;
        throw new ScoresCsvException(path, line, column, $"label '{field}' is not 0 (real) or 1 (fake)");
    }

    private static double ParseScore(string field, string path, int line, string column)
    {
        if (!double.TryParse(field.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
            throw new ScoresCsvException(path, line, column, $"score '{field}' is not a number");
        if (double.IsNaN(v)) throw new ScoresCsvException(path, line, column, "score is NaN");
        return v;
    }

    /// <summary>RFC 4180 records with the 1-based line each starts on; quoted fields may hold commas, quotes ("") and newlines.</summary>
    private static IEnumerable<(int Line, List<string> Fields)> ParseRecords(TextReader reader, string path)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1;
        bool inQuotes = false, fieldWasQuoted = false, any = false;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            any = true;
            char ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                    else inQuotes = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            switch (ch)
            {
                case '"':
                    if (field.Length > 0 || fieldWasQuoted)
                        throw new ScoresCsvException(path, line, null, "a quote inside an unquoted field; quote the whole field and double inner quotes");
                    inQuotes = fieldWasQuoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    fieldWasQuoted = false;
                    break;
                case '\r':
                    break; // CRLF line ends: the '\n' ends the record
                case '\n':
                    fields.Add(field.ToString());
                    yield return (recordLine, fields);
                    fields = new List<string>();
                    field.Clear();
                    fieldWasQuoted = false;
                    any = false;
                    line++;
                    recordLine = line;
                    break;
                default:
                    if (fieldWasQuoted)
                        throw new ScoresCsvException(path, line, null, $"text '{ch}' after a closing quote");
                    field.Append(ch);
                    break;
            }
        }
        if (inQuotes) throw new ScoresCsvException(path, recordLine, null, "a quoted field is not closed before the end of the file");
        if (any)
        {
            fields.Add(field.ToString());
            yield return (recordLine, fields);
        }
    }
}
