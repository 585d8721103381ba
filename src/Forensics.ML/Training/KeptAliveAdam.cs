using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>
/// TorchSharp's <see cref="Adam"/> (same options, parameter groups and <see cref="Adam.State"/>, so checkpoints and
/// <c>state_dict()</c> are unchanged) whose <see cref="step"/> does the same arithmetic in the same op order, but with
/// every Scalar created explicitly and disposed only after the native call that reads it. TorchSharp 0.107's Adam.step
/// passes implicit Scalars (beta1, 1 - beta1, eps, -lr/bc1, ...) that become unreachable before libtorch reads them; a GC
/// from another thread (data loaders, HTTP polling) then lets Scalar's finalizer free them mid-call, which corrupted
/// updates silently or failed in <c>c10::Scalar::toFloat</c>. Upstream fixes are open (dotnet/TorchSharp#1434, #1496),
/// none is released; see <see cref="KeptAliveScalars"/>. AMSGrad and maximize are not implemented and are rejected.
/// </summary>
public sealed class KeptAliveAdam : Adam
{
    /// <summary>Adam over <paramref name="parameters"/> with PyTorch's L2-style weight decay (added to the gradient).</summary>
    public KeptAliveAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 0)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad: false, maximize: false)
    {
    }

    /// <summary>One Adam update of every parameter that has a gradient (single-tensor Adam of PyTorch and TorchSharp).</summary>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<ParamGroup>(group =>
        {
            var options = (Options)group.Options;
            if (options.amsgrad == true)
                throw new NotSupportedException("KeptAliveAdam does not implement amsgrad (a parameter group set amsgrad = true).");
            if (options.maximize == true)
                throw new NotSupportedException("KeptAliveAdam does not implement maximize (a parameter group set maximize = true).");
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var weightDecay = options.weight_decay!.Value;
            var eps = options.eps!.Value;
            var lr = options.LearningRate!.Value;
            // The group's constants, alive until the whole group is done.
            using var beta1Scalar = beta1.ToScalar();
            using var oneMinusBeta1 = (1 - beta1).ToScalar();
            using var beta2Scalar = beta2.ToScalar();
            using var oneMinusBeta2 = (1 - beta2).ToScalar();
            using var epsScalar = eps.ToScalar();
            using var weightDecayScalar = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                var state = (State)_state[param.Handle];
                state.step += 1;

                var biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                var biasCorrection2 = 1 - Math.Pow(beta2, state.step);

                if (weightDecay != 0) grad = grad.add(param, alpha: weightDecayScalar);

                state.exp_avg.mul_(beta1Scalar).add_(grad, alpha: oneMinusBeta1);
                state.exp_avg_sq.mul_(beta2Scalar).addcmul_(grad, grad.conj(), value: oneMinusBeta2);

                using var sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
                // add_(Scalar) alone would pass an implicit alpha 1, so the kept-alive one is passed.
                var denom = state.exp_avg_sq.sqrt().div(sqrtBiasCorrection2).add_(epsScalar, KeptAliveScalars.One);

                using var negativeStepSize = (-(lr / biasCorrection1)).ToScalar();
                param.addcdiv_(state.exp_avg, denom, value: negativeStepSize);
            }
        }, closure);
    }
}
