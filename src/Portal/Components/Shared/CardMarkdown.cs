using Markdig;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;
using Microsoft.AspNetCore.Components;

namespace Portal.Components.Shared;

/// <summary>
/// Model cards (Markdown written by users, training runs and the demo) as HTML: CommonMark with tables, raw HTML shown as
/// text, and links only to http(s), mailto or the portal's own pages, so a card cannot run script in a reader's browser.
/// </summary>
public static class CardMarkdown
{
    static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UsePipeTables().UseAutoLinks().DisableHtml().Build();

    /// <summary>The card as safe HTML; empty for no card.</summary>
    public static MarkupString ToHtml(string? markdown)
    {
        if (string.IsNullOrWhiteSpace(markdown)) return new MarkupString("");
        var document = Markdown.Parse(markdown, Pipeline);
        foreach (var link in document.Descendants<LinkInline>())
            if (!SafeUrl(link.Url)) link.Url = "#";
        return new MarkupString(Markdown.ToHtml(document, Pipeline));
    }

    static bool SafeUrl(string? url)
    {
        if (string.IsNullOrWhiteSpace(url)) return true;
        var u = url.Trim();
        if (u.StartsWith('/') || u.StartsWith('#')) return !u.StartsWith("//", StringComparison.Ordinal);
        var colon = u.IndexOf(':');
        if (colon < 0) return true;   // relative: a portal page
        var scheme = u[..colon].ToLowerInvariant();
        return scheme is "http" or "https" or "mailto";
    }
}
