/** Row-wise L2 normalisation (shaders/l2norm.wgsl). Forward and backward. */
import { Tensor, formatShape } from '../tensor.js';

/**
 * Each row of x [N, D] divided by its Euclidean norm, floored: `x / sqrt(max(sum(x^2), eps))`
 * (TensorFlow's tf.math.l2_normalize; PyTorch's F.normalize floors the norm instead,
 * x / max(norm, eps)). eps (default 1e-12) keeps an all-zero row at zero.
 */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  if (x.shape.length !== 2) throw new Error(`l2Normalize: expected [N, D], got ${formatShape(x.shape)}`);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new Error(`l2Normalize: eps ${eps} must be a positive number`);
  const [rows, d] = x.shape;
  const launch = (entry: string, g: Tensor | null) => {
    const out = Tensor.empty(x.gpu, x.shape);
    x.gpu.kernels.dispatch(`l2norm.${entry}`, {
      uniforms: { rows, d, eps },
      buffers: { out, x, g },
      groups: rows,
    });
    return out;
  };
  return x.gpu.tape.record('l2Normalize', [x], launch('forward', null), (g) => [launch('backward', g)], [x]);
}
