/**
 * batchNorm2d over [B, C, H, W] (also [B, C, 1, 1]) in training mode (batch statistics, biased
 * variance; running statistics updated in place with the unbiased variance) or eval mode (running
 * statistics). The backward runs through the batch statistics in training mode.
 */
import { Tensor, formatShape, sameShape } from '../tensor.js';
import { reluBackward } from './elementwise.js';
import { channelMoments, batchNormSums } from './reduce.js';
import { dims4 } from '../shape.js';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** Fused after the normalisation: `+ residual` (same shape as x). */
  residual?: Tensor;
  /** Fused last: ReLU. */
  relu?: boolean;
}

export function batchNorm2d(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, options: BatchNormOptions): Tensor {
  const [batch, channels, h, w] = dims4('batchNorm2d', x);
  for (const [name, t] of [['weight', weight], ['bias', bias], ['running_mean', runningMean], ['running_var', runningVar]] as const) {
    if (t.size !== channels) throw new Error(`batchNorm2d: ${name} ${formatShape(t.shape)} does not have ${channels} channels`);
  }
  const eps = options.eps ?? 1e-5;
  const momentum = options.momentum ?? 0.1;
  const inner = h * w;
  const count = batch * inner;
  const gpu = x.gpu;
  let mean: Tensor;
  let variance: Tensor;
  if (options.training) {
    if (count < 2) throw new Error(`batchNorm2d: training needs more than one value per channel, got input ${formatShape(x.shape)}`);
    [mean, variance] = channelMoments(x, batch, channels, inner);
    gpu.kernels.dispatch('batchnorm.update_running', {
      uniforms: { channels, momentum, unbias: count / (count - 1) },
      buffers: { running_mean: runningMean, running_var: runningVar, mean, variance },
      invocations: channels,
    });
    // The running statistics changed in place: what was derived from them (an eval BatchNorm fold) is stale.
    gpu.parameterVersion++;
  } else {
    mean = runningMean;
    variance = runningVar;
  }
  const residual = options.residual;
  if (residual && !sameShape(residual.shape, x.shape)) throw new Error(`batchNorm2d: residual ${formatShape(residual.shape)} does not match ${formatShape(x.shape)}`);
  const out = Tensor.empty(gpu, x.shape);
  gpu.kernels.dispatch('batchnorm.normalize', {
    uniforms: { n: x.size, channels, inner, eps, has_res: residual ? 1 : 0, relu: options.relu ? 1 : 0 },
    buffers: { out, x, mean, variance, gamma: weight, beta: bias, res: residual },
    invocations: Math.ceil(x.size / 4),
  });
  const result = gpu.tape.record(
    'batchNorm2d',
    residual ? [x, weight, bias, residual] : [x, weight, bias],
    out,
    (gOut, needs) => {
      // Through the fused ReLU: the output is > 0 exactly where it passed. The residual input needs
      // the masked gradient itself; otherwise the kernels below apply the mask as they read.
      const g = options.relu && residual ? reluBackward(gOut, out) : gOut;
      const mask = options.relu && !residual ? out : null;
      const [sumG, sumGxc] = batchNormSums(g, x, mean, batch, channels, inner, mask);
      let dx: Tensor | null = null;
      if (needs[0]) {
        const uniforms = { n: x.size, channels, inner, eps, count, train: options.training ? 1 : 0, masked: mask ? 1 : 0 };
        const coef = Tensor.empty(gpu, [4 * channels]);
        gpu.kernels.dispatch('batchnorm.backward_coefficients', {
          uniforms,
          buffers: { coef_out: coef, mean, variance, gamma: weight, sum_g: sumG, sum_gxc: sumGxc },
          invocations: channels,
        });
        dx = Tensor.empty(gpu, x.shape);
        gpu.kernels.dispatch('batchnorm.backward_input', {
          uniforms,
          buffers: { out: dx, grad: g, x, coef, relu_out: mask },
          invocations: Math.ceil(x.size / 4),
        });
      }
      let dgamma: Tensor | null = null;
      if (needs[1]) {
        dgamma = Tensor.empty(gpu, weight.shape);
        gpu.kernels.dispatch('batchnorm.gamma_grad', {
          uniforms: { n: channels, channels, inner, eps },
          buffers: { dgamma, variance, sum_gxc: sumGxc },
          invocations: channels,
        });
      }
      return [dx, dgamma, needs[2] ? sumG.view(bias.shape) : null, residual && needs[3] ? g : null];
    },
    options.relu ? [x, mean, variance, weight, out] : [x, mean, variance, weight],
  );
  if (options.training) {
    // The tape holds its own references to the batch statistics.
    mean.dispose();
    variance.dispose();
  }
  return result;
}

/**
 * Eval-mode BatchNorm after a convolution with bias `convBias` (or none), as the per-channel
 * `acc * scale + shift` that the convolution's epilogue applies (not recorded).
 */
export function foldBatchNorm(weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, convBias: Tensor | null, eps = 1e-5): { scale: Tensor; shift: Tensor } {
  const gpu = weight.gpu;
  const channels = weight.size;
  const scale = Tensor.empty(gpu, [channels]);
  const shift = Tensor.empty(gpu, [channels]);
  gpu.kernels.dispatch('batchnorm.fold', {
    uniforms: { channels, eps, has_bias: convBias ? 1 : 0 },
    buffers: { fold_scale: scale, fold_shift: shift, gamma: weight, beta: bias, mean: runningMean, variance: runningVar, conv_bias: convBias },
    invocations: channels,
  });
  return { scale, shift };
}
