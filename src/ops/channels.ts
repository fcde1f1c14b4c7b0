/**
 * Channel ops on [B, C, ...] tensors (shaders/channels.wgsl): zero-padding on the channel axis and
 * concatenation along it. Forward and backward (each gradient the matching channel window of g).
 */
import { Tensor, formatShape, type Shape } from '../tensor.js';

/** out's channels [lo, hi) = src's channels [lo - offset, hi - offset) (0 where src has none). */
function copyWindow(src: Tensor, out: Tensor, lo: number, hi: number, offset: number): void {
  const inner = out.shape.slice(2).reduce((a, b) => a * b, 1);
  const n = out.shape[0] * (hi - lo) * inner;
  if (n === 0) return;
  src.gpu.kernels.dispatch('channels.copy_window', {
    uniforms: { n, inner, out_c: out.shape[1], src_c: src.shape[1], lo, hi, offset },
    buffers: { out, src },
    invocations: n,
  });
}

/** g's channels [first, first + channels) as a tensor of `shape` (a channel op's input gradient). */
function channelSlice(g: Tensor, shape: Shape, first: number): Tensor {
  const dx = Tensor.empty(g.gpu, shape);
  copyWindow(g, dx, 0, shape[1], -first);
  return dx;
}

function checkCount(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${op}: ${name} ${v} must be a non-negative integer`);
}

/** Zero channels on axis 1: [B, C, ...] -> [B, before + C + after, ...], x in channels [before, before + C). */
export function padChannels(x: Tensor, before: number, after: number): Tensor {
  if (x.shape.length < 2) throw new Error(`padChannels: expected [B, C, ...], got ${formatShape(x.shape)}`);
  checkCount('padChannels', 'before', before);
  checkCount('padChannels', 'after', after);
  const [b, c, ...rest] = x.shape;
  const out = Tensor.empty(x.gpu, [b, before + c + after, ...rest]);
  copyWindow(x, out, 0, out.shape[1], before);
  return x.gpu.tape.record('padChannels', [x], out, (g) => [channelSlice(g, x.shape, before)]);
}

/** Concatenation along axis 1 (channels) of [B, C_i, ...] tensors whose other dimensions agree. */
export function concat(tensors: readonly Tensor[], axis = 1): Tensor {
  if (axis !== 1) throw new Error(`concat: only axis 1 (channels) is supported, got axis ${axis}`);
  if (!tensors.length) throw new Error('concat: no tensors');
  const [first] = tensors;
  for (const t of tensors) {
    const agree = t.shape.length === first.shape.length && t.shape.every((d, i) => i === 1 || d === first.shape[i]);
    if (t.shape.length < 2 || !agree)
      throw new Error(`concat: shapes ${tensors.map((u) => formatShape(u.shape)).join(', ')} differ outside axis 1`);
    if (t.gpu !== first.gpu) throw new Error('concat: tensors live on different devices');
  }
  const starts: number[] = [];
  let channels = 0;
  for (const t of tensors) {
    starts.push(channels);
    channels += t.shape[1];
  }
  const out = Tensor.empty(first.gpu, [first.shape[0], channels, ...first.shape.slice(2)]);
  tensors.forEach((t, k) => copyWindow(t, out, starts[k], starts[k] + t.shape[1], starts[k]));
  return first.gpu.tape.record('concat', tensors, out, (g, needs) =>
    tensors.map((t, k) => (needs[k] ? channelSlice(g, t.shape, starts[k]) : null)),
  );
}
