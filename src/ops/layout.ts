/**
 * Layout ops (shaders/layout.wgsl): pixel shuffle, SISN's space-to-depth head, nearest upsampling,
 * per-channel broadcast, and reshape. Each with its backward.
 */
import { Tensor, formatShape, shapeSize, viewOf, type Shape } from '../tensor.js';
import { dims4 } from '../shape.js';

/** space_shuffle's channel orders, by the names of their codes in layout.wgsl. */
type ShuffleOrder = 'ORDER_PIXEL_SHUFFLE' | 'ORDER_SISN_HEAD';

/** Moves data between an image [B, C, H, W] and its packed form [B, C*s*s, H/s, W/s]. */
function shuffle(src: Tensor, outShape: Shape, image: Shape, s: number, order: ShuffleOrder, toImage: boolean): Tensor {
  const out = Tensor.empty(src.gpu, outShape);
  const [batch, channels, h, w] = image;
  // One invocation per run of 4 packed columns of an image row (see the kernel).
  const runs = batch * channels * h * Math.ceil(w / s / 4);
  src.gpu.kernels.dispatch('layout.space_shuffle', {
    uniforms: {
      ...{ n: runs, channels, h, w, s, to_image: toImage ? 1 : 0 },
      order: src.gpu.kernels.constant('layout.space_shuffle', order),
    },
    buffers: { out, x: src },
    invocations: runs,
  });
  return out;
}

/** PyTorch `pixel_shuffle(x, r)`: [B, C*r*r, H, W] -> [B, C, H*r, W*r]. */
export function pixelShuffle(x: Tensor, r: number): Tensor {
  const [b, cr, h, w] = dims4('pixelShuffle', x);
  if (!Number.isInteger(r) || r < 1 || cr % (r * r))
    throw new Error(`pixelShuffle: ${cr} channels are not divisible by ${r}^2`);
  const image = [b, cr / (r * r), h * r, w * r];
  const out = shuffle(x, image, image, r, 'ORDER_PIXEL_SHUFFLE', true);
  return x.gpu.tape.record('pixelShuffle', [x], out, (g) => [
    shuffle(g, x.shape, image, r, 'ORDER_PIXEL_SHUFFLE', false),
  ]);
}

/**
 * SISN's head space-to-depth: PyTorch `view(n, c, h/s, s, w/s, s).permute(0, 3, 5, 1, 2, 4)`
 * then reshape to [n, s*s*c, h/s, w/s]: output channel (dy*s + dx)*c + ch. Not pixel_unshuffle's order.
 */
export function spaceToDepth(x: Tensor, s: number): Tensor {
  const [b, c, h, w] = dims4('spaceToDepth', x);
  if (!Number.isInteger(s) || s < 1 || h % s || w % s)
    throw new Error(`spaceToDepth: ${h}x${w} is not divisible by ${s}`);
  const packed = [b, c * s * s, h / s, w / s];
  const out = shuffle(x, packed, x.shape, s, 'ORDER_SISN_HEAD', false);
  return x.gpu.tape.record('spaceToDepth', [x], out, (g) => [shuffle(g, x.shape, x.shape, s, 'ORDER_SISN_HEAD', true)]);
}

/** Nearest-neighbour upsampling by an integer factor: [B, C, H, W] -> [B, C, H*s, W*s]. */
export function upsampleNearest(x: Tensor, s: number): Tensor {
  const [b, c, h, w] = dims4('upsampleNearest', x);
  if (!Number.isInteger(s) || s < 1) throw new Error(`upsampleNearest: factor ${s} must be a positive integer`);
  const launch = (kernel: string, src: Tensor, shape: Shape) => {
    const out = Tensor.empty(x.gpu, shape);
    x.gpu.kernels.dispatch(kernel, {
      uniforms: { n: out.size, h, w, s },
      buffers: { out, x: src },
      invocations: out.size,
    });
    return out;
  };
  const out = launch('layout.upsample_nearest', x, [b, c, h * s, w * s]);
  return x.gpu.tape.record('upsampleNearest', [x], out, (g) => [
    launch('layout.upsample_nearest_backward', g, x.shape),
  ]);
}

/** `a[b, c] * alpha` broadcast over an [B, C, inner] tensor of `shape` (not recorded). */
export function expandChannels(a: Tensor, shape: Shape, inner: number, alpha: number): Tensor {
  if (a.size * inner !== shapeSize(shape))
    throw new Error(
      `expandChannels: ${formatShape(a.shape)} times ${inner} values does not fill ${formatShape(shape)}`,
    );
  const out = Tensor.empty(a.gpu, shape);
  a.gpu.kernels.dispatch('layout.expand_channels', {
    uniforms: { n: out.size, inner, alpha },
    buffers: { out4: out, a },
    invocations: Math.ceil(out.size / 4),
  });
  return out;
}

/** Same data, another shape (a view, recorded: the gradient is viewed back). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const out = viewOf(x, shape, 'reshape');
  return x.gpu.tape.record('reshape', [x], out, (g) => [viewOf(g, x.shape, 'reshape')]);
}
