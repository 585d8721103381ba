using System.Text.RegularExpressions;

namespace Forensics.ML.Data;

/// <summary>
/// One CSV field as every CSV of the portal and the CLI writes it: RFC 4180 quoting, and neutralised against formula
/// injection as OWASP describes (https://owasp.org/www-community/attacks/CSV_Injection): a text cell that starts with
/// = + - @, a tab or a carriage return is prefixed with a single quote, so a spreadsheet shows it as text and never
/// evaluates it. A cell that is a number (-3.5, +2, -1e-5) is left as it is, so negative numbers stay numbers. A cell that
/// already starts with a single quote before such a character ('=x, ''x) gets a second one, so <see cref="Unescape"/>
/// gives back exactly the text that was written.
/// </summary>
public static partial class CsvCell
{
    /// <summary>The field as written: neutralised, then quoted when it holds a comma, a quote or a line break.</summary>
    public static string Escape(string? text)
    {
        var field = Neutralise(text ?? "");
        return field.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;
    }

    /// <summary>The field with a leading single quote added when a spreadsheet could take it for a formula (not yet quoted).</summary>
    public static string Neutralise(string text) =>
        text.Length > 0 && (IsTrigger(text[0]) && !IsNumber(text) || Unescape(text).Length != text.Length) ? "'" + text : text;

    /// <summary>The text <see cref="Neutralise"/> was given: one leading single quote before a trigger character or another quote is dropped.</summary>
    public static string Unescape(string field) =>
        field.Length > 1 && field[0] == '\'' && (IsTrigger(field[1]) || field[1] == '\'') ? field[1..] : field;

    static bool IsTrigger(char c) => c is '=' or '+' or '-' or '@' or '\t' or '\r';

    /// <summary>A plain decimal number (sign, digits, point, exponent), nothing around it.</summary>
    [GeneratedRegex(@"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")]
    private static partial Regex Number();

    static bool IsNumber(string text) => Number().IsMatch(text);
}
