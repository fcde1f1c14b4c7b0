/** Radix softmax of split attention (shaders/attention.wgsl). */
import { Tensor, formatShape } from '../tensor.js';
import { channelReduce, dims4, ReduceMode } from './reduce.js';

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
      invocations: b * channels,
    });
    return out;
  };
  const out = launch('attention.radix_softmax', x, x);
  return x.gpu.tape.record('radixSoftmax', [x], out, (g) => [launch('attention.radix_softmax_backward', g, out)], [out]);
}

/**
 * The attention-weighted sum of the R splits: out[b, c] = sum_k att[b, k*C + c] * z[b, k*C + c]
 * for att [B, R*C, 1, 1] and z [B, R*C, H, W]; in one pass, without the [B, R*C, H, W] product.
 */
export function attend(att: Tensor, z: Tensor, radix: number): Tensor {
  const [b, rc, h, w] = dims4('attend', z);
  if (!Number.isInteger(radix) || radix < 1 || rc % radix) throw new Error(`attend: ${rc} channels do not split into radix ${radix}`);
  if (att.size !== b * rc || att.shape.length !== 4 || att.shape[2] !== 1 || att.shape[3] !== 1) throw new Error(`attend: attention ${formatShape(att.shape)} does not match ${formatShape(z.shape)}`);
  const channels = rc / radix;
  const inner = h * w;
  const launch = (kernel: string, dst: Tensor, src: Tensor) => {
    z.gpu.kernels.dispatch(kernel, { uniforms: { n: dst.size, channels, inner, radix }, buffers: { dst, src, att }, invocations: Math.ceil(dst.size / 4) });
    return dst;
  };
  const out = launch('attention.attend', Tensor.empty(z.gpu, [b, channels, h, w]), z);
  return z.gpu.tape.record(
    'attend',
    [att, z],
    out,
    (g, needs) => {
      let dAtt: Tensor | null = null;
      if (needs[0]) {
        // dAtt[b, k*C + c] = sum_i z[b, k*C + c, i] * g[b, c, i]: z plane q pairs with g plane (q / RC) * C + q % C.
        dAtt = channelReduce(z, { batch: 1, channels: b * rc, inner, mode: ReduceMode.Dot, y: g, yPlanes: { group: rc, chunk: channels } }).view(att.shape);
      }
      return [dAtt, needs[1] ? launch('attention.attend_backward', Tensor.empty(z.gpu, z.shape), g) : null];
    },
    [att, z],
  );
}
