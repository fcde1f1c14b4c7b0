/**
 * Max and average pooling (shaders/pool.wgsl): K x K windows over each channel of an NCHW tensor,
 * any stride, zero padding per side. Forward and backward.
 */
import { Tensor } from '../tensor.js';
import { dims4 } from '../shape.js';
import { slidingWindow, type Padding, type Window } from './window.js';

export interface Pool2dOptions {
  /** The window's size (K x K). */
  kernel: number;
  /** Default: the kernel size (windows side by side). */
  stride?: number;
  /** The same on every side or [top, bottom, left, right], each in [0, K-1] (default 0: 'valid'). */
  padding?: Padding;
}

/** pool.wgsl's `mode` codes, by name. */
type PoolMode = 'MODE_MAX' | 'MODE_AVG';

/** Where argmax stores a cell's index as f32: exact only up to 2^24. */
const MAX_PLANE = 2 ** 24;

function launch(
  mode: PoolMode,
  src: Tensor,
  dst: Tensor,
  [h, w]: readonly [number, number],
  win: Window,
  entry: 'forward' | 'backward',
  argmax: Tensor | null,
): void {
  src.gpu.kernels.dispatch(`pool.${entry}`, {
    uniforms: {
      n: dst.size,
      h,
      w,
      hout: win.hout,
      wout: win.wout,
      k: win.kernel,
      stride: win.stride,
      pad_y: win.padding[0],
      pad_x: win.padding[2],
      mode: src.gpu.kernels.constant(`pool.${entry}`, mode),
      save_argmax: argmax ? 1 : 0,
    },
    buffers: { out: dst, inp: src, [entry === 'forward' ? 'argmax' : 'argmax_in']: argmax },
    unwritten: entry === 'forward' && !argmax ? ['argmax'] : [],
    invocations: dst.size,
  });
}

function pool2d(op: string, mode: PoolMode, x: Tensor, options: Pool2dOptions): Tensor {
  const [b, c, h, w] = dims4(op, x);
  const win = slidingWindow(op, [h, w], options.kernel, options.stride ?? options.kernel, options.padding);
  const out = Tensor.empty(x.gpu, [b, c, win.hout, win.wout]);
  const wantsGrad = x.gpu.tape.gradEnabled && x.requiresGrad;
  if (mode === 'MODE_MAX' && wantsGrad && h * w > MAX_PLANE)
    throw new Error(`${op}: a ${h}x${w} map has more than 2^24 cells, past what its gradient can index`);
  const argmax = mode === 'MODE_MAX' && wantsGrad ? Tensor.empty(x.gpu, out.shape) : null;
  launch(mode, x, out, [h, w], win, 'forward', argmax);
  const result = x.gpu.tape.record(
    op,
    [x],
    out,
    (g) => {
      const dx = Tensor.empty(x.gpu, x.shape);
      launch(mode, g, dx, [h, w], win, 'backward', argmax);
      return [dx];
    },
    argmax ? [argmax] : [],
  );
  argmax?.dispose();
  return result;
}

/**
 * Max pooling: each output is the largest in-bounds value of its window (padded cells never
 * win). The gradient goes to that value's cell; on ties, to the first in row-major window order.
 */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  return pool2d('maxPool2d', 'MODE_MAX', x, options);
}

/**
 * Average pooling: each output is the mean of its window's in-bounds cells; padded cells are not
 * counted (TensorFlow's padded average pooling, PyTorch's count_include_pad = false).
 */
export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  return pool2d('avgPool2d', 'MODE_AVG', x, options);
}
