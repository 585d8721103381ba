using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Runtime;

/// <summary>
/// Scalars that no finalizer can free while libtorch reads them. TorchSharp 0.107's <see cref="Scalar"/> frees its native
/// handle in a finalizer, and its convenience overloads (<c>t.add_(1)</c>, <c>t * 0.5</c>, <c>t.add(u)</c> with the implicit
/// alpha 1, <c>t.ToDouble()</c>) create a Scalar, read its handle and drop it before the native call returns; a GC that
/// another thread triggers during that call lets the finalizer thread free the scalar mid-call (wrong values, or errors
/// such as "argument alpha must not be a floating point number"). Upstream fixes are open (dotnet/TorchSharp#1434,
/// #1496), none is released. The static scalars here are rooted for the process's life; for other values create one
/// with <c>ToScalar()</c> under <c>using</c>, which keeps it reachable until after the call.
/// </summary>
public static class KeptAliveScalars
{
    /// <summary>The integer 1 (counters such as BatchNorm's num_batches_tracked, and the alpha of plain adds).</summary>
    public static readonly Scalar One = 1L.ToScalar();

    /// <summary>The integer 0.</summary>
    public static readonly Scalar Zero = 0L.ToScalar();

    /// <summary>The float 1.0 (clamp bounds, 1 - x).</summary>
    public static readonly Scalar OneF = 1.0.ToScalar();

    /// <summary>The float 0.0 (clamp bounds).</summary>
    public static readonly Scalar ZeroF = 0.0.ToScalar();

    /// <summary>The value of a one-element tensor as a double, with its temporary Scalar kept alive across the read.</summary>
    public static double ItemAsDouble(this Tensor tensor)
    {
        using var value = tensor.ToScalar();
        return value.ToDouble();
    }

    /// <summary>The value of a one-element tensor as a float, with its temporary Scalar kept alive across the read.</summary>
    public static float ItemAsSingle(this Tensor tensor)
    {
        using var value = tensor.ToScalar();
        return value.ToSingle();
    }

    // Tensor-and-number ops with the number's Scalar alive until the native call has returned. Each does the same
    // TorchSharp call as the operator or overload it replaces, so results are bit-identical.

    /// <summary><c>a + b</c> (TorchSharp's <c>a.add(b)</c> passes an implicit alpha 1).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a + b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor Plus(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.add(value, One);
    }

    /// <summary><c>a - b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor Minus(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.sub(value);
    }

    /// <summary><c>b - a</c> for a number <paramref name="b"/> (as TorchSharp's operator: <c>(-a) + b</c>).</summary>
    public static Tensor SubtractedFrom(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        using var negated = a.negative();
        return negated.add(value, One);
    }

    /// <summary><c>a * b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor Times(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.mul(value);
    }

    /// <summary><c>a / b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor DividedBy(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.div(value);
    }

    /// <summary><c>a.pow(b)</c> for a number <paramref name="b"/>.</summary>
    public static Tensor Power(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.pow(value);
    }

    /// <summary><c>a.clamp(min, max)</c> for numbers.</summary>
    public static Tensor ClampTo(this Tensor a, double min, double max)
    {
        using var low = min.ToScalar();
        using var high = max.ToScalar();
        return a.clamp(low, high);
    }

    /// <summary>In place <c>a += b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor AddInPlace(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.add_(value, One);
    }

    /// <summary>In place <c>a += b</c> for a tensor <paramref name="b"/> (TorchSharp's <c>add_(b)</c> passes an implicit alpha 1).</summary>
    public static Tensor AddInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>In place <c>a -= b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor SubInPlace(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.sub_(value);
    }

    /// <summary>In place <c>a *= b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor MulInPlace(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.mul_(value);
    }

    /// <summary>In place <c>a /= b</c> for a number <paramref name="b"/>.</summary>
    public static Tensor DivInPlace(this Tensor a, double b)
    {
        using var value = b.ToScalar();
        return a.div_(value);
    }

    /// <summary>In place <c>a.clamp_(min, max)</c> for numbers.</summary>
    public static Tensor ClampInPlace(this Tensor a, double min, double max)
    {
        using var low = min.ToScalar();
        using var high = max.ToScalar();
        return a.clamp_(low, high);
    }
}
