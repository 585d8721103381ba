namespace Portal.Components.Shared;

/// <summary>The train/test matrix's colours: a diverging scale around chance, as GenImage's heatmaps.</summary>
public static class MatrixHeat
{
    /// <summary>
    /// The background of an ACC cell: hue 0 (red) at 0, a pale yellow at 0.5 (chance), hue 120 (green) at 1, more
    /// saturated away from chance; empty for an unknown value.
    /// </summary>
    public static string Style(double? acc)
    {
        if (acc is not { } a || !double.IsFinite(a)) return "";
        a = Math.Clamp(a, 0, 1);
        var distance = Math.Abs(a - 0.5) * 2; // 0 at chance, 1 at 0 or 1
        var hue = a < 0.5 ? 60 * a * 2 : 60 + 60 * (a - 0.5) * 2;
        var saturation = 70 - 15 * Math.Max(0, a - 0.5) * 2;
        var lightness = 92 - (a < 0.5 ? 30 : 47) * distance;
        return FormattableString.Invariant($"background-color: hsl({hue:0}, {saturation:0}%, {lightness:0}%); color: {(lightness < 55 ? "#fff" : "rgba(0,0,0,.87)")}");
    }
}
