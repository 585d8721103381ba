using SkiaSharp;

namespace Portal.Tests.Support;

/// <summary>Builds small dataset folders on disk for the tests.</summary>
public static class ImageFolders
{
    /// <summary>Encoded bytes of a w x h image with seeded noise.</summary>
    public static byte[] Encode(int w, int h, SKEncodedImageFormat format, int seed, int quality = 90)
    {
        using var bitmap = new SKBitmap(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var rng = new Random(seed);
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)));
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        return data.ToArray();
    }

    public static void Write(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// A GenImage-layout folder: generators sdv4 (2 ai + 3 nature per split) and adm (1 + 1 per split), upper-case
    /// .JPEG reals as in ImageNet, plus three broken files in sdv4/train: a zero-byte PNG, a truncated JPEG and a text
    /// file named .png; and a README.txt that is not an image.
    /// </summary>
    public static string GenImage(string root)
    {
        var seed = 0;
        foreach (var (gen, fakes, reals) in new[] { ("imagenet_ai_0419_sdv4", 2, 3), ("imagenet_ai_0508_adm", 1, 1) })
            foreach (var split in new[] { "train", "val" })
            {
                for (var i = 0; i < fakes; i++)
                    Write(Path.Combine(root, gen, split, "ai", $"{i}_sdv4_{i:D5}.png"), Encode(16, 12, SKEncodedImageFormat.Png, seed++));
                for (var i = 0; i < reals; i++)
                    Write(Path.Combine(root, gen, split, "nature", $"n0149{i}_{i}.JPEG"), Encode(20, 16, SKEncodedImageFormat.Jpeg, seed++));
            }
        var train = Path.Combine(root, "imagenet_ai_0419_sdv4", "train");
        Write(Path.Combine(train, "ai", "empty.png"), []);
        var jpeg = Encode(64, 48, SKEncodedImageFormat.Jpeg, 99);
        Write(Path.Combine(train, "nature", "truncated.JPEG"), jpeg[..(jpeg.Length / 2)]);
        Write(Path.Combine(train, "ai", "notes.png"), "this is a text file, not an image\n"u8.ToArray());
        File.WriteAllText(Path.Combine(root, "README.txt"), "GenImage-style test folder\n");
        return root;
    }

    /// <summary>A flat 0_real/1_fake folder with <paramref name="count"/> tiny PNGs per class.</summary>
    public static string RealFake(string root, int count)
    {
        for (var i = 0; i < count; i++)
        {
            Write(Path.Combine(root, "0_real", $"{i:D5}.png"), Encode(8, 8, SKEncodedImageFormat.Png, 2 * i));
            Write(Path.Combine(root, "1_fake", $"{i:D5}.png"), Encode(8, 8, SKEncodedImageFormat.Png, 2 * i + 1));
        }
        return root;
    }

    /// <summary>
    /// An aligned set: train/ and val/ with 0_real/imgN.png and 1_fake/imgN.png of the same stem (side x side PNGs; real i
    /// and its fake drawn from seeds i and <paramref name="fakeSeedBase"/> + i + 1, counted across both splits).
    /// </summary>
    public static string Aligned(string root, int train, int val, int side, int fakeSeedBase)
    {
        var seed = 0;
        foreach (var (split, count) in new[] { ("train", train), ("val", val) })
            for (var i = 0; i < count; i++)
            {
                Write(Path.Combine(root, split, "0_real", $"img{i}.png"), Encode(side, side, SKEncodedImageFormat.Png, seed++));
                Write(Path.Combine(root, split, "1_fake", $"img{i}.png"), Encode(side, side, SKEncodedImageFormat.Png, fakeSeedBase + seed));
            }
        return root;
    }
}
