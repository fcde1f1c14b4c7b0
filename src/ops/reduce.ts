/** Per-channel reductions (shaders/reduce.wgsl), and global average pooling built on them. */
import { Tensor, formatShape, viewOf } from '../tensor.js';
import { dims4 } from '../shape.js';
import { expandChannels } from './layout.js';

/** channelReduce's terms: x, x * y, |x - y|; each the name of its MODE code in reduce.wgsl. */
export enum ReduceMode {
  Sum = 'MODE_SUM',
  Dot = 'MODE_DOT',
  AbsDiff = 'MODE_ABS_DIFF',
}

export interface ReduceArgs {
  batch: number;
  channels: number;
  inner: number;
  mode: ReduceMode;
  scale?: number;
  y?: Tensor;
  /** Add the result into this tensor (a parameter's gradient) instead of returning a new one. */
  into?: Tensor | null;
}

/** Values per channel up to which channelReduce sums each channel in one invocation. */
const SERIAL_SUM_MAX = 256;

function checkView(op: string, x: Tensor, batch: number, channels: number, inner: number): void {
  if (batch * channels * inner !== x.size)
    throw new Error(`${op}: [${batch}, ${channels}, ${inner}] does not match ${formatShape(x.shape)}`);
}

/**
 * `out[c] = scale * sum over (b, i) of term(x, y)`, x viewed as [batch, channels, inner]; with
 * `into`, added into it and `into` returned. Not recorded.
 */
export function channelReduce(x: Tensor, a: ReduceArgs): Tensor {
  checkView('channelReduce', x, a.batch, a.channels, a.inner);
  if (a.into && a.into.size !== a.channels)
    throw new Error(`channelReduce: into ${formatShape(a.into.shape)} does not have ${a.channels} values`);
  if ((a.mode !== ReduceMode.Sum) !== !!a.y) {
    const mode = Object.entries(ReduceMode).find(([, code]) => code === a.mode)?.[0];
    throw new Error(`channelReduce: mode ${mode} ${a.y ? 'takes no' : 'needs a'} second operand y`);
  }
  if (a.y && a.y.size !== x.size)
    throw new Error(`channelReduce: y ${formatShape(a.y.shape)} does not match x ${formatShape(x.shape)}`);
  const out = a.into ?? Tensor.empty(x.gpu, [a.channels]);
  // Few values per channel (pooled features): one invocation per channel instead of a workgroup.
  const serial = a.batch * a.inner <= SERIAL_SUM_MAX;
  const kernel = serial ? 'reduce.channel_sum_serial' : 'reduce.channel_sum';
  x.gpu.kernels.dispatch(kernel, {
    uniforms: {
      batch: a.batch,
      channels: a.channels,
      inner: a.inner,
      scale: a.scale ?? 1,
      accumulate: a.into ? 1 : 0,
    },
    buffers: { out, x, y: a.y },
    ...(serial ? { invocations: a.channels } : { groups: a.channels }),
    constants: { MODE: x.gpu.kernels.constant(kernel, a.mode) },
  });
  return out;
}

/** BatchNorm's running statistics, updated in place by `channelMoments`. */
export interface RunningStats {
  mean: Tensor;
  variance: Tensor;
  momentum: number;
}

/**
 * The per-channel moments of a [batch, channels, height, width] tensor in pieces, written by the
 * kernel that produced it (conv2d's epilogue): the mean and M2 of each run of `columns` adjacent
 * values of a row, as [channels][batch * height * ceil(width / columns)][2].
 */
export interface MomentPartials {
  partials: Tensor;
  shape: readonly [number, number, number, number];
  columns: number;
}

/** A BatchNorm's affine parameters and epsilon. */
export interface BatchNormAffine {
  gamma: Tensor;
  beta: Tensor;
  eps: number;
}

/**
 * Per-channel mean and biased variance of x viewed as [batch, channels, inner], in one pass, as one
 * [4C] tensor: means, variances, then BatchNorm's scale gamma / sqrt(var + eps) and beta (what the
 * normalisation applies and its backward recomputes the ReLU's mask with); the `running`
 * statistics are updated in the same kernel. From `pieces` (x's moments in pieces, see
 * MomentPartials) when given, without reading x.
 */
export function channelMoments(
  x: Tensor,
  batch: number,
  channels: number,
  inner: number,
  running: RunningStats,
  affine: BatchNormAffine,
  pieces?: MomentPartials,
): Tensor {
  checkView('channelMoments', x, batch, channels, inner);
  const stats = Tensor.empty(x.gpu, [4 * channels]);
  const count = batch * inner;
  const uniforms = {
    ...{ batch, channels, inner, eps: affine.eps, momentum: running.momentum, unbias: count / (count - 1) },
    masked: x.gpu.kernels.constant('reduce.moments', ReluMask.None),
  };
  const common = {
    out: stats,
    running_mean: running.mean,
    running_var: running.variance,
    bn_gamma: affine.gamma,
    bn_beta: affine.beta,
  };
  if (!pieces) {
    x.gpu.kernels.dispatch('reduce.moments', { uniforms, buffers: { ...common, x }, groups: channels });
    return stats;
  }
  const [pb, pc, height, width] = pieces.shape;
  if (pb !== batch || pc !== channels || height * width !== inner)
    throw new Error(`channelMoments: moments of [${pieces.shape.join(', ')}] for [${batch}, ${channels}, ${inner}]`);
  const xBlocks = Math.ceil(width / pieces.columns);
  const parts = batch * height * xBlocks;
  if (pieces.partials.size !== channels * parts * 2)
    throw new Error(`channelMoments: ${pieces.partials.size} partial moments, expected ${channels * parts * 2}`);
  x.gpu.kernels.dispatch('reduce.moments_merge', {
    uniforms: { ...uniforms, parts, x_blocks: xBlocks, columns: pieces.columns, width },
    buffers: { ...common, partial_moments: pieces.partials },
    invocations: channels,
  });
  return stats;
}

export interface BatchNormSums {
  /** [2C]: sum g, then sum g * (x - mean), per channel. */
  sums: Tensor;
  dgamma: Tensor;
  dbeta: Tensor;
}

/**
 * Where a BatchNorm's gradient passes a fused ReLU (the names of the `masked` codes in
 * shaders/include/relu_mask.wgsl): nowhere masked (no ReLU), where `Output` > 0
 * (the ReLU's output, needed when a residual was added before it), or where the normalised x
 * (recomputed from x and the statistics' scale and beta) > 0.
 */
export enum ReluMask {
  None = 'MASK_NONE',
  Output = 'MASK_OUTPUT',
  FromInput = 'MASK_FROM_INPUT',
}

/**
 * BatchNorm's backward sums per channel (g counted where the fused ReLU passed it), and from them
 * the gradients of gamma and beta: added into `into` (the parameters' gradients) when given, else
 * new. `stats` is channelMoments' [4C]; `reluOut` is the ReLU's output for ReluMask.Output.
 */
export function batchNormSums(
  g: Tensor,
  x: Tensor,
  stats: Tensor,
  dims: { batch: number; channels: number; inner: number; eps: number },
  mask: ReluMask,
  reluOut: Tensor | null,
  into: { dgamma: Tensor; dbeta: Tensor } | null,
): BatchNormSums {
  const { batch, channels, inner, eps } = dims;
  checkView('batchNormSums', x, batch, channels, inner);
  if ((mask === ReluMask.Output) !== !!reluOut)
    throw new Error('batchNormSums: the ReLU output is needed exactly for ReluMask.Output');
  const gpu = x.gpu;
  const sums = Tensor.empty(gpu, [2 * channels]);
  const dgamma = into?.dgamma ?? Tensor.empty(gpu, [channels]);
  const dbeta = into?.dbeta ?? Tensor.empty(gpu, [channels]);
  gpu.kernels.dispatch('reduce.bn_backward', {
    uniforms: {
      batch,
      channels,
      inner,
      eps,
      masked: gpu.kernels.constant('reduce.bn_backward', mask),
      accumulate: into ? 1 : 0,
    },
    buffers: { out: sums, x, y: g, stats, mask: reluOut, dgamma, dbeta },
    groups: channels,
  });
  return { sums, dgamma, dbeta };
}

/** Global average pooling: [B, C, H, W] -> [B, C, 1, 1]. */
export function globalAvgPool(x: Tensor): Tensor {
  const [b, c, h, w] = dims4('globalAvgPool', x);
  const pooled = channelReduce(x, {
    batch: 1,
    channels: b * c,
    inner: h * w,
    mode: ReduceMode.Sum,
    scale: 1 / (h * w),
  });
  const out = viewOf(pooled, [b, c, 1, 1], 'globalAvgPool');
  pooled.dispose();
  return x.gpu.tape.record('globalAvgPool', [x], out, (g) => [expandChannels(g, x.shape, h * w, 1 / (h * w))]);
}
