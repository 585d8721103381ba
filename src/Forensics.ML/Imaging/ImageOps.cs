using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Imaging;

/// <summary>Height and width of an image in pixels.</summary>
public readonly record struct ImageSize(int Height, int Width)
{
    /// <summary>The size of an image tensor [C,H,W].</summary>
    public static ImageSize Of(Tensor image) => new((int)image.shape[^2], (int)image.shape[^1]);

    /// <inheritdoc/>
    public override string ToString() => $"{Width}x{Height}";
}

/// <summary>Resampling filters for <see cref="ImageOps.Resize"/>.</summary>
public enum ResizeFilter
{
    /// <summary>Bilinear (triangle) filter, widened when downscaling (antialias), as PIL's BILINEAR.</summary>
    Bilinear,
    /// <summary>Bicubic (a = -0.5) filter, widened when downscaling (antialias), as PIL's BICUBIC.</summary>
    Bicubic,
}

/// <summary>
/// Deterministic operations on image tensors [3,H,W] float32 in [0,1]. Each returns a new tensor; inputs are not changed.
/// </summary>
public static class ImageOps
{
    /// <summary>ITU-R 601-2 luma weights, as PIL's convert('L') (torchvision's tensor path uses 0.2989 for red; the
    /// reference pipeline works on PIL images, so PIL's weights are used).</summary>
    public static readonly (float R, float G, float B) LumaWeights = (0.299f, 0.587f, 0.114f);

    /// <summary>The rectangle [top, top+height) x [left, left+width); it must lie inside the image.</summary>
    public static Tensor Crop(Tensor image, int top, int left, int height, int width)
    {
        var size = ImageSize.Of(image);
        if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > size.Height || left + width > size.Width)
            throw new ArgumentOutOfRangeException(nameof(top), $"crop {width}x{height} at (top {top}, left {left}) does not fit a {size} image");
        using var rows = image.narrow(-2, top, height);
        using var block = rows.narrow(-1, left, width);
        // contiguous() hands back the view itself when it is already contiguous; that view is disposed here, so copy then.
        return block.is_contiguous() ? block.clone() : block.contiguous();
    }

    /// <summary>
    /// Pads with numpy's 'symmetric' rule (edge pixel repeated: ... c b a | a b c ... ), torchvision's
    /// padding_mode='symmetric'. Pads wider than the image keep reflecting, as np.pad does.
    /// </summary>
    public static Tensor PadSymmetric(Tensor image, int top, int bottom, int left, int right)
    {
        if (top < 0 || bottom < 0 || left < 0 || right < 0) throw new ArgumentOutOfRangeException(nameof(top), "padding must be >= 0");
        var size = ImageSize.Of(image);
        using var rowIndex = SymmetricIndex(size.Height, top, bottom);
        using var colIndex = SymmetricIndex(size.Width, left, right);
        using var rows = image.index_select(-2, rowIndex);
        return rows.index_select(-1, colIndex);
    }

    /// <summary>Pads with a constant value (torchvision's padding_mode='constant').</summary>
    public static Tensor PadConstant(Tensor image, int top, int bottom, int left, int right, double value = 0)
    {
        if (top < 0 || bottom < 0 || left < 0 || right < 0) throw new ArgumentOutOfRangeException(nameof(top), "padding must be >= 0");
        return nn.functional.pad(image, [left, right, top, bottom], PaddingModes.Constant, value);
    }

    /// <summary>
    /// Resizes to <paramref name="height"/> x <paramref name="width"/> with an antialiased filter (support widened by the
    /// scale when downscaling), which is PIL's Image.resize algorithm computed in float; the result is clamped to [0,1].
    /// </summary>
    public static Tensor Resize(Tensor image, int height, int width, ResizeFilter filter = ResizeFilter.Bicubic)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"invalid target size {width}x{height}");
        if (ImageSize.Of(image) == new ImageSize(height, width)) return image.clone();
        using var scope = torch.NewDisposeScope();
        var mode = filter == ResizeFilter.Bicubic ? InterpolationMode.Bicubic : InterpolationMode.Bilinear;
        var resized = nn.functional.interpolate(image.unsqueeze(0), [height, width], mode: mode, align_corners: false, antialias: true)
            .squeeze(0).ClampInPlace(0f, 1f);
        return resized.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Gaussian blur as scipy.ndimage.gaussian_filter (the reference's blur augmentation): per channel, separable, kernel
    /// radius int(truncate * sigma + 0.5) with truncate = 4, 'reflect' borders (edge repeated). sigma &lt;= 0 returns a copy.
    /// </summary>
    public static Tensor GaussianBlur(Tensor image, double sigma, double truncate = 4.0)
    {
        int radius = (int)(truncate * sigma + 0.5);
        if (sigma <= 0 || radius <= 0) return image.clone();
        var weights = new float[2 * radius + 1];
        double sum = 0;
        for (int k = -radius; k <= radius; k++) sum += Math.Exp(-0.5 * k * k / (sigma * sigma));
        for (int k = -radius; k <= radius; k++) weights[k + radius] = (float)(Math.Exp(-0.5 * k * k / (sigma * sigma)) / sum);

        using var scope = torch.NewDisposeScope();
        int channels = (int)image.shape[0];
        var kernel = torch.tensor(weights, dtype: image.dtype, device: image.device);
        var vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1);
        var horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1);
        var padded = PadSymmetric(image, radius, radius, radius, radius).unsqueeze(0);
        var blurred = nn.functional.conv2d(padded, vertical, groups: channels);
        blurred = nn.functional.conv2d(blurred, horizontal, groups: channels).squeeze(0);
        return blurred.MoveToOuterDisposeScope();
    }

    /// <summary>Luma [1,H,W] = 0.299 R + 0.587 G + 0.114 B.</summary>
    public static Tensor Luma(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        var luma = image[0].Times(LumaWeights.R).AddInPlace(image[1].Times(LumaWeights.G)).AddInPlace(image[2].Times(LumaWeights.B)).unsqueeze(0);
        return luma.MoveToOuterDisposeScope();
    }

    /// <summary>Grayscale with three equal channels (PIL convert('L') then back to RGB, in float).</summary>
    public static Tensor Grayscale(Tensor image)
    {
        using var luma = Luma(image);
        return luma.expand(3, -1, -1).contiguous();
    }

    /// <summary>ImageNet statistics used by the reference's normalisation ("resnet" norm type).</summary>
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f], ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>(x - mean[c]) / std[c] per channel.</summary>
    public static Tensor Normalize(Tensor image, IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        if (mean.Count != image.shape[0] || std.Count != image.shape[0])
            throw new ArgumentException($"mean and std need {image.shape[0]} values, got {mean.Count} and {std.Count}");
        if (std.Any(s => s <= 0)) throw new ArgumentException("std values must be > 0", nameof(std));
        using var scope = torch.NewDisposeScope();
        var m = torch.tensor(mean.ToArray(), dtype: image.dtype, device: image.device).view(-1, 1, 1);
        var s = torch.tensor(std.ToArray(), dtype: image.dtype, device: image.device).view(-1, 1, 1);
        return image.sub(m).div_(s).MoveToOuterDisposeScope();
    }

    /// <summary>Blend as torchvision's _blend: clamp(ratio * image + (1 - ratio) * other, 0, 1).</summary>
    internal static Tensor Blend(Tensor image, Tensor other, double ratio)
    {
        using var scope = torch.NewDisposeScope();
        return image.Times(ratio).AddInPlace(other.Times(1.0 - ratio)).ClampInPlace(0f, 1f).MoveToOuterDisposeScope();
    }

    /// <summary>RGB [3,H,W] to HSV [3,H,W] with H, S, V in [0,1] (torchvision's tensor formula).</summary>
    public static Tensor RgbToHsv(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        var (r, g, b) = (image[0], image[1], image[2]);
        var maxc = image.amax([0]);
        var minc = image.amin([0]);
        var equal = maxc.eq(minc);
        var chroma = maxc - minc;
        var ones = torch.ones_like(maxc);
        var saturation = chroma / torch.where(equal, ones, maxc);
        var divisor = torch.where(equal, ones, chroma);
        var rc = (maxc - r) / divisor;
        var gc = (maxc - g) / divisor;
        var bc = (maxc - b) / divisor;
        var isR = maxc.eq(r);
        var isG = maxc.eq(g).logical_and(isR.logical_not());
        var isB = maxc.ne(g).logical_and(maxc.ne(r));
        var hue = isR.to_type(image.dtype) * (bc - gc)
                  + isG.to_type(image.dtype) * ((rc - bc) + 2.0)
                  + isB.to_type(image.dtype) * ((gc - rc) + 4.0);
        hue = torch.remainder(hue / 6.0 + 1.0, 1.0);
        return torch.stack([hue, saturation, maxc]).MoveToOuterDisposeScope();
    }

    /// <summary>HSV [3,H,W] back to RGB (torchvision's tensor formula).</summary>
    public static Tensor HsvToRgb(Tensor hsv)
    {
        using var scope = torch.NewDisposeScope();
        var (h, s, v) = (hsv[0], hsv[1], hsv[2]);
        var sector = torch.floor(h.Times(6.0));
        var f = h.Times(6.0) - sector;
        using var six = 6.ToScalar();
        var i = torch.remainder(sector.to_type(ScalarType.Int32), six);
        var p = (v * s.neg().Plus(1.0)).ClampTo(0f, 1f);
        var q = (v * (s * f).neg().Plus(1.0)).ClampTo(0f, 1f);
        var t = (v * (s * f.neg().Plus(1.0)).neg().Plus(1.0)).ClampTo(0f, 1f);
        var mask = i.unsqueeze(0).eq(torch.arange(6, dtype: ScalarType.Int32, device: hsv.device).view(-1, 1, 1)).to_type(hsv.dtype);
        var red = torch.stack([v, q, p, p, t, v]);
        var green = torch.stack([t, v, v, q, p, p]);
        var blue = torch.stack([p, p, t, v, v, q]);
        var rgb = torch.stack([(mask * red).sum(0L), (mask * green).sum(0L), (mask * blue).sum(0L)]);
        return rgb.MoveToOuterDisposeScope();
    }

    // Source indices for symmetric padding of a length-n axis by (before, after).
    private static Tensor SymmetricIndex(int n, int before, int after)
    {
        var index = new long[before + n + after];
        long period = 2L * n;
        for (int k = 0; k < index.Length; k++)
        {
            long m = ((k - before) % period + period) % period;
            index[k] = m < n ? m : period - 1 - m;
        }
        return torch.tensor(index);
    }
}
