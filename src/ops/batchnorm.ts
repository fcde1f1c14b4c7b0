/**
 * batchNorm2d over [B, C, H, W] (also [B, C, 1, 1]) in training mode (batch statistics, biased
 * variance; running statistics updated in place with the unbiased variance) or eval mode (running
 * statistics). The backward runs through the batch statistics in training mode.
 */
import { Tensor, formatShape, sameShape, viewOf } from '../tensor.js';
import { reluBackward } from './elementwise.js';
import { channelMoments, batchNormSums, ReluMask, type MomentPartials } from './reduce.js';
import { dims4 } from '../shape.js';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** Fused after the normalisation: `+ residual` (same shape as x). */
  residual?: Tensor;
  /** Fused last: ReLU. */
  relu?: boolean;
  /**
   * Training: x's moments in pieces from the kernel that produced it (conv2dWithMoments), so x is not read for them.
   */
  moments?: MomentPartials;
}

/** PyTorch's BatchNorm2d default. */
const DEFAULT_EPS = 1e-5;

/** Invocations of batchnorm.normalize and backward_input over x: each takes RUN vec4s (batchnorm.wgsl). */
const runs = (x: Tensor) => Math.ceil(x.size / 4 / x.gpu.kernels.constant('batchnorm.normalize', 'RUN'));

/** A BatchNorm's parameters and running statistics. */
export interface BatchNormParams {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

/**
 * The statistics a BatchNorm applies to x, as [mean, var, scale, beta] (C values each; see
 * batchnorm.wgsl): the batch's in training (the running statistics updated in place), else the
 * running ones.
 */
export function batchNormStatistics(x: Tensor, bn: BatchNormParams, options: BatchNormOptions): Tensor {
  const [batch, channels, h, w] = dims4('batchNorm2d', x);
  for (const [name, t] of [
    ['weight', bn.weight],
    ['bias', bn.bias],
    ['running_mean', bn.runningMean],
    ['running_var', bn.runningVar],
  ] as const) {
    if (t.size !== channels)
      throw new Error(`batchNorm2d: ${name} ${formatShape(t.shape)} does not have ${channels} channels`);
  }
  const eps = options.eps ?? DEFAULT_EPS;
  const gpu = x.gpu;
  if (!options.training) {
    const stats = Tensor.empty(gpu, [4 * channels]);
    gpu.kernels.dispatch('batchnorm.eval_stats', {
      uniforms: { channels, eps },
      buffers: { stats_out: stats, mean: bn.runningMean, variance: bn.runningVar, gamma: bn.weight, beta: bn.bias },
      invocations: channels,
    });
    return stats;
  }
  if (batch * h * w < 2)
    throw new Error(`batchNorm2d: training needs more than one value per channel, got input ${formatShape(x.shape)}`);
  const stats = channelMoments(
    x,
    batch,
    channels,
    h * w,
    { mean: bn.runningMean, variance: bn.runningVar, momentum: options.momentum ?? 0.1 },
    { gamma: bn.weight, beta: bn.bias, eps },
    options.moments,
  );
  return stats;
}

export function batchNorm2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  options: BatchNormOptions,
): Tensor {
  const bn = { weight, bias, runningMean, runningVar };
  const stats = batchNormStatistics(x, bn, options);
  const [, channels, h, w] = x.shape as number[];
  const residual = options.residual;
  if (residual && !sameShape(residual.shape, x.shape))
    throw new Error(`batchNorm2d: residual ${formatShape(residual.shape)} does not match ${formatShape(x.shape)}`);
  const out = Tensor.empty(x.gpu, x.shape);
  x.gpu.kernels.dispatch('batchnorm.normalize', {
    uniforms: {
      n: x.size,
      channels,
      inner: h * w,
      eps: options.eps ?? DEFAULT_EPS,
      has_res: residual ? 1 : 0,
      relu: options.relu ? 1 : 0,
    },
    buffers: { out, x, stats, res: residual },
    invocations: runs(x),
  });
  const result = x.gpu.tape.record(
    'batchNorm2d',
    residual ? [x, weight, bias, residual] : [x, weight, bias],
    out,
    (gOut, needs, into) => batchNormBackward(gOut, { x, stats, bn, out, options }, needs, into),
    options.relu && residual ? [x, stats, weight, out] : [x, stats, weight],
  );
  // The tape holds its own reference to the statistics.
  stats.dispose();
  return result;
}

/** What BatchNorm's backward reads of its forward: its input, statistics and (with a residual and ReLU) output. */
export interface BatchNormForward {
  x: Tensor;
  stats: Tensor;
  bn: BatchNormParams;
  out: Tensor | null;
  options: BatchNormOptions;
}

/**
 * BatchNorm's backward rule for inputs [x, weight, bias, residual?] from gOut, the gradient at its
 * output (after the fused residual add and ReLU): the gradients, or `into` where the tape offers
 * gamma's and beta's (see Tape).
 */
export function batchNormBackward(
  gOut: Tensor,
  f: BatchNormForward,
  needs: readonly boolean[],
  into: readonly (Tensor | null)[],
): (Tensor | null)[] {
  const { x, stats, bn, options } = f;
  const [batch, channels, h, w] = x.shape as number[];
  const inner = h * w;
  const eps = options.eps ?? DEFAULT_EPS;
  const gpu = x.gpu;
  const residual = options.residual;
  // Through the fused ReLU, the kernels below apply its mask as they read gOut: the output is
  // > 0 exactly where it passed, which without a residual they recompute from x (one load less).
  const mask = !options.relu ? ReluMask.None : residual ? ReluMask.Output : ReluMask.FromInput;
  const reluOut = mask === ReluMask.Output ? f.out : null;
  // The residual input's gradient is the masked gOut: backward_input stores it as it goes, or
  // (no dx wanted) a pass of its own.
  const residualGrad =
    residual && needs[3]
      ? reluOut && !needs[0]
        ? reluBackward(gOut, reluOut)
        : reluOut
          ? Tensor.empty(gpu, x.shape)
          : gOut
      : null;
  // gamma's and beta's gradients go straight into their .grad when the tape offers both (two
  // different tensors: one kernel writes both).
  const target = into[1] && into[2] && into[1] !== into[2] ? { dgamma: into[1], dbeta: into[2] } : null;
  const { sums, dgamma, dbeta } = batchNormSums(gOut, x, stats, { batch, channels, inner, eps }, mask, reluOut, target);
  let dx: Tensor | null = null;
  if (needs[0]) {
    dx = Tensor.empty(gpu, x.shape);
    const writeMasked = !!reluOut && !!residualGrad;
    gpu.kernels.dispatch('batchnorm.backward_input', {
      uniforms: {
        n: x.size,
        channels,
        inner,
        eps,
        count: batch * inner,
        train: options.training ? 1 : 0,
        masked: gpu.kernels.constant('batchnorm.backward_input', mask),
        write_masked: writeMasked ? 1 : 0,
      },
      buffers: { out: dx, grad: gOut, x, stats, sums, relu_out: reluOut, g_out: writeMasked ? residualGrad : null },
      unwritten: writeMasked ? [] : ['g_out'],
      invocations: runs(x),
    });
  }
  if (target) return [dx, into[1], into[2], residualGrad];
  return [
    dx,
    needs[1] ? viewOf(dgamma, bn.weight.shape) : null,
    needs[2] ? viewOf(dbeta, bn.bias.shape) : null,
    residualGrad,
  ];
}

/**
 * Eval-mode BatchNorm after a convolution with bias `convBias` (or none), as the per-channel
 * `acc * scale + shift` that the convolution's epilogue applies (not recorded).
 */
export function foldBatchNorm(
  weight: Tensor,
  bias: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  convBias: Tensor | null,
  eps = DEFAULT_EPS,
): { scale: Tensor; shift: Tensor } {
  const gpu = weight.gpu;
  const channels = weight.size;
  for (const [name, t] of [
    ['bias', bias],
    ['running_mean', runningMean],
    ['running_var', runningVar],
    ['the convolution bias', convBias],
  ] as const) {
    if (t && t.size !== channels)
      throw new Error(
        `foldBatchNorm: ${name} ${formatShape(t.shape)} does not match the weight ${formatShape(weight.shape)}`,
      );
  }
  const scale = Tensor.empty(gpu, [channels]);
  const shift = Tensor.empty(gpu, [channels]);
  gpu.kernels.dispatch('batchnorm.fold', {
    uniforms: { channels, eps, has_bias: convBias ? 1 : 0 },
    buffers: {
      fold_scale: scale,
      fold_shift: shift,
      gamma: weight,
      beta: bias,
      mean: runningMean,
      variance: runningVar,
      conv_bias: convBias,
    },
    invocations: channels,
  });
  return { scale, shift };
}
