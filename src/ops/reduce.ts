/** Per-channel reductions (shaders/reduce.wgsl), and global average pooling built on them. */
import { Tensor, formatShape } from '../tensor.js';
import { dims4 } from '../shape.js';
import { expandChannels } from './layout.js';

export enum ReduceMode {
  Sum = 0,
  Dot = 1,
  AbsDiff = 2,
}

export interface ReduceArgs {
  batch: number;
  channels: number;
  inner: number;
  mode: ReduceMode;
  scale?: number;
  y?: Tensor;
}

function checkView(op: string, x: Tensor, batch: number, channels: number, inner: number): void {
  if (batch * channels * inner !== x.size) throw new Error(`${op}: [${batch}, ${channels}, ${inner}] does not match ${formatShape(x.shape)}`);
}

/** `out[c] = scale * sum over (b, i) of term(x, y)`, x viewed as [batch, channels, inner]. Not recorded. */
export function channelReduce(x: Tensor, a: ReduceArgs): Tensor {
  checkView('channelReduce', x, a.batch, a.channels, a.inner);
  const out = Tensor.empty(x.gpu, [a.channels]);
  x.gpu.kernels.dispatch('reduce.channel_sum', {
    uniforms: { batch: a.batch, channels: a.channels, inner: a.inner, scale: a.scale ?? 1 },
    buffers: { out, x, y: a.y },
    groups: a.channels,
    constants: { MODE: a.mode },
  });
  return out;
}

/** Two per-channel results of one pass (moments, BatchNorm backward sums). */
function pairReduce(kernel: string, x: Tensor, y: Tensor, m: Tensor | null, batch: number, channels: number, inner: number, mask: Tensor | null = null): [Tensor, Tensor] {
  checkView(kernel, x, batch, channels, inner);
  const out = Tensor.empty(x.gpu, [channels]);
  const out2 = Tensor.empty(x.gpu, [channels]);
  x.gpu.kernels.dispatch(kernel, {
    uniforms: { batch, channels, inner, scale: 1, masked: mask ? 1 : 0 },
    buffers: { out, out2, x, y, m, mask },
    groups: channels,
  });
  return [out, out2];
}

/** Per-channel mean and biased variance of x viewed as [batch, channels, inner] (exactly centred). */
export function channelMoments(x: Tensor, batch: number, channels: number, inner: number): [Tensor, Tensor] {
  return pairReduce('reduce.moments', x, x, null, batch, channels, inner);
}

/** BatchNorm backward sums per channel: sum g and sum g * (x - mean), g counted where mask > 0 if given. */
export function batchNormSums(g: Tensor, x: Tensor, mean: Tensor, batch: number, channels: number, inner: number, mask: Tensor | null = null): [Tensor, Tensor] {
  return pairReduce('reduce.bn_backward', x, g, mean, batch, channels, inner, mask);
}

/** Global average pooling: [B, C, H, W] -> [B, C, 1, 1]. */
export function globalAvgPool(x: Tensor): Tensor {
  const [b, c, h, w] = dims4('globalAvgPool', x);
  const pooled = channelReduce(x, { batch: 1, channels: b * c, inner: h * w, mode: ReduceMode.Sum, scale: 1 / (h * w) });
  const out = pooled.view([b, c, 1, 1]);
  pooled.dispose();
  return x.gpu.tape.record('globalAvgPool', [x], out, (g) => [expandChannels(g, x.shape, h * w, 1 / (h * w))]);
}
