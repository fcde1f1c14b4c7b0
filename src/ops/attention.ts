/** Radix softmax of split attention (shaders/attention.wgsl). */
import { Tensor, formatShape } from '../tensor.js';

/**
 * Softmax over the R chunks of a [B, R*C, 1, 1] tensor, per channel: for each (b, c), the values at
 * channels k*C + c (k < R) become their softmax. ResNeSt's rSoftMax with cardinality 1.
 */
export function radixSoftmax(x: Tensor, radix: number): Tensor {
  if (x.shape.length !== 4 || x.shape[2] !== 1 || x.shape[3] !== 1) throw new Error(`radixSoftmax: expected [B, R*C, 1, 1], got ${formatShape(x.shape)}`);
  const [b, rc] = x.shape;
  if (!Number.isInteger(radix) || radix < 1 || rc % radix) throw new Error(`radixSoftmax: ${rc} channels do not split into radix ${radix}`);
  const channels = rc / radix;
  const launch = (kernel: string, src: Tensor, s: Tensor) => {
    const out = Tensor.empty(x.gpu, x.shape);
    x.gpu.kernels.dispatch(kernel, {
      uniforms: { pairs: b * channels, channels, radix },
      buffers: kernel.endsWith('backward') ? { out, x: src, s } : { out, x: src },
      groups: Math.ceil((b * channels) / 64),
    });
    return out;
  };
  const out = launch('attention.radix_softmax', x, x);
  return x.gpu.tape.record('radixSoftmax', [x], out, (g) => [launch('attention.radix_softmax_backward', g, out)], [out]);
}
