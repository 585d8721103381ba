using Forensics.ML.Models;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Tensor = TorchSharp.torch.Tensor;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Detectors;

/// <summary>
/// The network of a <see cref="Detector"/>: whatever turns a prepared batch [B,3,H,W] (float32) into its raw outputs.
/// Our ResNets, a TorchScript module and an ONNX Runtime session all fit behind it, so evaluation, cross-generator tests
/// and sweeps drive any of them the same way.
/// </summary>
public interface IDetectorNetwork : IDisposable
{
    /// <summary>"native", "torchscript" or "onnx".</summary>
    string Format { get; }

    /// <summary>Where inputs must be and outputs are.</summary>
    Device Device { get; }

    /// <summary>The input shape the file declares: null entries are dynamic (and all are null when nothing is declared).</summary>
    (int? Batch, int? Height, int? Width) DeclaredInput { get; }

    /// <summary>The raw outputs of <paramref name="input"/> [B,3,H,W] on <see cref="Device"/>; a new tensor.</summary>
    Tensor Forward(Tensor input);

    /// <summary>Moves the network to <paramref name="device"/>.</summary>
    void MoveTo(Device device);

    /// <summary>Switches to evaluation behaviour (batch norm statistics, no dropout).</summary>
    void Eval();
}

/// <summary>One of our ResNets.</summary>
internal sealed class NativeNetwork(ResNet model, Device device) : IDetectorNetwork
{
    public ResNet Model { get; } = model;
    public string Format => "native";
    public Device Device { get; private set; } = device;
    public (int? Batch, int? Height, int? Width) DeclaredInput => (null, null, null);
    public Tensor Forward(Tensor input) => Model.forward(input);
    public void MoveTo(Device device)
    {
        Model.to(device);
        Device = device;
    }
    public void Eval() => Model.eval();
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// A module saved by torch.jit.trace or torch.jit.script, loaded through libtorch's own TorchScript loader. The file is
/// code: it may call any op libtorch has (see the README's Security section).
/// </summary>
public sealed class TorchScriptNetwork : IDetectorNetwork
{
    private TorchScriptNetwork(jit.ScriptModule module, Device device)
    {
        Module = module;
        Device = device;
    }

    /// <summary>The loaded module (trainable: parameters(), train(), and <c>torch.jit.save</c> writes it back).</summary>
    public jit.ScriptModule Module { get; }

    /// <inheritdoc/>
    public string Format => "torchscript";

    /// <inheritdoc/>
    public Device Device { get; private set; }

    /// <inheritdoc/>
    public (int? Batch, int? Height, int? Width) DeclaredInput => (null, null, null);

    /// <summary>Loads <paramref name="path"/> onto <paramref name="device"/>, in eval mode.</summary>
    /// <exception cref="DetectorCheckpointException">libtorch cannot read it as TorchScript (the message keeps libtorch's first line).</exception>
    public static TorchScriptNetwork Load(string path, Device device)
    {
        jit.ScriptModule module;
        try { module = jit.load(path, device); }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new DetectorCheckpointException(path,
                $"{path} is not a TorchScript file that libtorch {__version__} can load (save it with torch.jit.trace(...).save() or " +
                $"torch.jit.script(...).save()): {FirstLine(e.Message)}", inner: e);
        }
        module.eval();
        return new TorchScriptNetwork(module, device);
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor input)
    {
        var result = Module.call(input);
        return result switch
        {
            Tensor t => t,
            _ => throw new InvalidOperationException(
                $"The TorchScript module's forward returned {result?.GetType().Name ?? "nothing"}; a detector returns one tensor [B] or [B, K]."),
        };
    }

    /// <inheritdoc/>
    public void MoveTo(Device device)
    {
        Module.to(device);
        Device = device;
    }

    /// <inheritdoc/>
    public void Eval() => Module.eval();

    /// <inheritdoc/>
    public void Dispose() => Module.Dispose();

    internal static string FirstLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? message;
        return line.Length > 400 ? line[..400] + "..." : line;
    }
}

/// <summary>
/// An ONNX model run by ONNX Runtime: the CPU execution provider, or CUDA's when the device is CUDA (that needs the
/// Microsoft.ML.OnnxRuntime.Gpu.Linux package in place of Microsoft.ML.OnnxRuntime). One float input [B,3,H,W] whose
/// dimensions may be fixed or dynamic, one output.
/// </summary>
public sealed class OnnxNetwork : IDetectorNetwork
{
    private readonly string path;
    private readonly GraphOptimizationLevel optimization;
    private InferenceSession session;
    private readonly string inputName;
    private readonly string outputName;

    private OnnxNetwork(string path, InferenceSession session, Device device, GraphOptimizationLevel optimization)
    {
        this.path = path;
        this.optimization = optimization;
        this.session = session;
        Device = device;
        var inputs = session.InputMetadata;
        if (inputs.Count != 1)
            throw new DetectorCheckpointException(path, $"{path} has {inputs.Count} inputs ({string.Join(", ", inputs.Keys)}); a detector takes one image batch [B,3,H,W].");
        var (name, meta) = inputs.First();
        if (meta.ElementType != typeof(float))
            throw new DetectorCheckpointException(path, $"{path}: input '{name}' is {meta.ElementType.Name}; a detector takes float32.");
        var dims = meta.Dimensions;
        if (dims.Length != 4 || (dims[1] > 0 && dims[1] != 3))
            throw new DetectorCheckpointException(path, $"{path}: input '{name}' has shape [{string.Join(", ", dims.Select(Dim))}]; a detector takes [B,3,H,W].");
        inputName = name;
        DeclaredInput = (Fixed(dims[0]), Fixed(dims[2]), Fixed(dims[3]));
        if (session.OutputMetadata.Count < 1) throw new DetectorCheckpointException(path, $"{path} has no output.");
        outputName = session.OutputMetadata.Keys.First();
    }

    /// <inheritdoc/>
    public string Format => "onnx";

    /// <inheritdoc/>
    public Device Device { get; private set; }

    /// <inheritdoc/>
    public (int? Batch, int? Height, int? Width) DeclaredInput { get; }

    /// <summary>
    /// Opens <paramref name="path"/> for <paramref name="device"/> (CPU, or CUDA through ONNX Runtime's CUDA provider), with
    /// ONNX Runtime's graph optimizations at <paramref name="optimization"/> (all of them unless a benchmark asks otherwise).
    /// </summary>
    /// <exception cref="DetectorCheckpointException">ONNX Runtime cannot read it, or its input is not one float image batch.</exception>
    public static OnnxNetwork Load(string path, Device device, GraphOptimizationLevel optimization = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        var session = Open(path, device, optimization);
        try { return new OnnxNetwork(path, session, device, optimization); }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static InferenceSession Open(string path, Device device, GraphOptimizationLevel optimization)
    {
        var options = new SessionOptions { IntraOpNumThreads = Math.Max(1, get_num_threads()), GraphOptimizationLevel = optimization };
        try
        {
            if (device.type == DeviceType.CUDA) options.AppendExecutionProvider_CUDA(Math.Max(0, device.index));
            return new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DetectorCheckpointException(path,
                device.type == DeviceType.CUDA && e.Message.Contains("CUDA", StringComparison.OrdinalIgnoreCase)
                    ? $"{path}: ONNX Runtime's CUDA provider is unavailable (a GPU worker needs the Microsoft.ML.OnnxRuntime.Gpu.Linux package): {TorchScriptNetwork.FirstLine(e.Message)}"
                    : $"{path} is not an ONNX model that ONNX Runtime can load: {TorchScriptNetwork.FirstLine(e.Message)}", inner: e);
        }
        finally
        {
            options.Dispose();
        }
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor input)
    {
        var shape = input.shape;
        float[] data;
        using (var cpu = input.to(ScalarType.Float32).cpu().contiguous()) data = cpu.data<float>().ToArray();
        var dense = new DenseTensor(data, shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(inputName, dense)], [outputName]);
        var output = results.First().AsTensor<float>();
        var dims = output.Dimensions.ToArray().Select(d => (long)d).ToArray();
        using var host = tensor(output.ToArray(), dims);
        return host.to(Device);
    }

    /// <inheritdoc/>
    public void MoveTo(Device device)
    {
        if (device.type == Device.type && device.index == Device.index) return;
        var next = Open(path, device, optimization);
        session.Dispose();
        session = next;
        Device = device;
    }

    /// <inheritdoc/>
    public void Eval() { }

    /// <inheritdoc/>
    public void Dispose() => session.Dispose();

    private static int? Fixed(int d) => d > 0 ? d : null;
    private static string Dim(int d) => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?";
}
