/** Per-channel reductions (shaders/reduce.wgsl), and global average pooling built on them. */
import { Tensor, formatShape } from '../tensor.js';

export enum ReduceMode {
  Sum = 0,
  Dot = 1,
  AbsDiff = 2,
  CenteredSquare = 3,
  DotCentered = 4,
}

export interface ReduceArgs {
  batch: number;
  channels: number;
  inner: number;
  mode: ReduceMode;
  scale?: number;
  y?: Tensor;
  /** Per-channel centre (MODE 3 and 4). */
  m?: Tensor;
}

/** `out[c] = scale * sum over (b, i) of term(x, y, m)`, x viewed as [batch, channels, inner]. Not recorded. */
export function channelReduce(x: Tensor, a: ReduceArgs): Tensor {
  if (a.batch * a.channels * a.inner !== x.size) throw new Error(`channelReduce: [${a.batch}, ${a.channels}, ${a.inner}] does not match ${formatShape(x.shape)}`);
  const out = Tensor.empty(x.gpu, [a.channels]);
  x.gpu.kernels.dispatch('reduce.channel_sum', {
    uniforms: { batch: a.batch, channels: a.channels, inner: a.inner, scale: a.scale ?? 1 },
    buffers: { out, x, y: a.y ?? x, m: a.m ?? x },
    groups: a.channels,
    constants: { MODE: a.mode },
  });
  return out;
}

/** NCHW dimensions of a rank-4 tensor, with a clear error otherwise. */
export function dims4(op: string, x: Tensor): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: expected an NCHW tensor, got ${formatShape(x.shape)}`);
  return x.shape as [number, number, number, number];
}

/** `a[b, c] * alpha` broadcast over an [B, C, inner] tensor of `shape` (not recorded). */
export function expandChannels(a: Tensor, shape: readonly number[], inner: number, alpha: number): Tensor {
  const out = Tensor.empty(a.gpu, shape);
  a.gpu.kernels.dispatch('layout.expand_channels', { uniforms: { n: out.size, inner, alpha }, buffers: { out, a }, groups: Math.ceil(out.size / 64) });
  return out;
}

/** Global average pooling: [B, C, H, W] -> [B, C, 1, 1]. */
export function globalAvgPool(x: Tensor): Tensor {
  const [b, c, h, w] = dims4('globalAvgPool', x);
  const pooled = channelReduce(x, { batch: 1, channels: b * c, inner: h * w, mode: ReduceMode.Sum, scale: 1 / (h * w) });
  const out = pooled.view([b, c, 1, 1]);
  pooled.dispose();
  return x.gpu.tape.record('globalAvgPool', [x], out, (g) => [expandChannels(g, x.shape, h * w, 1 / (h * w))]);
}
