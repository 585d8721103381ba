using Forensics.ML.Datasets;

namespace Portal.Components.Shared;

/// <summary>One folder layout the dataset scanner accepts, as the registration form describes it, with example image paths.</summary>
public sealed record DatasetLayoutHelpItem(DatasetLayout Layout, string Title, string Shape, string Labels, IReadOnlyList<string> Examples);

/// <summary>
/// What the registration form says about folder layouts: exactly the layouts <see cref="DatasetLayouts"/> accepts (a test
/// builds every example below and scans it), so the form never promises a layout the scan then refuses.
/// </summary>
public static class DatasetLayoutHelp
{
    public static IReadOnlyList<DatasetLayoutHelpItem> Layouts { get; } =
    [
        new(DatasetLayout.GenImage, "GenImage", "<generator>/<split>/{ai,nature}/ — or <split>/{ai,nature}/ for a single generator",
            "ai = fake, nature = real; split is train, val, valid or test",
            ["imagenet_glide/val/ai/1.png", "imagenet_glide/val/nature/2.JPEG", "imagenet_midjourney/train/ai/3.png"]),
        new(DatasetLayout.GenImage, "GenImage, one generator", "<split>/{ai,nature}/",
            "the generator is the folder's own name",
            ["train/ai/1.png", "train/nature/2.png", "val/ai/3.png", "val/nature/4.png"]),
        new(DatasetLayout.RealFake, "Real/fake (CNNDetection)", "0_real/ and 1_fake/ — directly in the folder, under <split>/, or under <split>/<category>/",
            "0_real = real, 1_fake = fake; the category is the generator",
            ["test/progan/0_real/1.png", "test/progan/1_fake/2.png", "test/stylegan/0_real/3.png", "test/stylegan/1_fake/4.png"]),
        new(DatasetLayout.RealFake, "Real/fake, no split", "0_real/ and 1_fake/",
            "every image is in the split \"all\"",
            ["0_real/1.png", "1_fake/2.png"]),
    ];

    /// <summary>Images are found at any depth below a labelled folder; these extensions are read.</summary>
    public const string Images = "PNG, JPEG, WebP, BMP and other formats the decoder reads; unreadable files are listed, not counted";
}
