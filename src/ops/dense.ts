/** The dense layer (shaders/dense.wgsl): x [N, In] times w [In, Out] plus bias [Out]. Forward and backward. */
import { Tensor, formatShape } from '../tensor.js';
import { channelReduce, ReduceMode } from './reduce.js';

interface Operand {
  t: Tensor;
  /** Strides of its (row, column) in the product. */
  rows: number;
  cols: number;
}

/** out[m, n] (= or +=) bias[n] + sum_k a(m, k) b(k, n), out [m, n]. */
function matmul(
  a: Operand,
  b: Operand,
  [m, k, n]: readonly [number, number, number],
  bias: Tensor | null,
  into: Tensor | null,
): Tensor {
  const gpu = a.t.gpu;
  const out = into ?? Tensor.empty(gpu, [m, n]);
  // The product's block per workgroup.
  const tile = gpu.kernels.constant('dense.matmul', 'TILE');
  gpu.kernels.dispatch('dense.matmul', {
    uniforms: {
      m,
      n,
      k,
      a_sm: a.rows,
      a_sk: a.cols,
      b_sk: b.rows,
      b_sn: b.cols,
      has_bias: bias ? 1 : 0,
      accumulate: into ? 1 : 0,
    },
    buffers: { out, a_mat: a.t, b_mat: b.t, bias },
    groups: [Math.ceil(n / tile), Math.ceil(m / tile), 1],
  });
  return out;
}

/** `x w + bias`: x [N, In], w [In, Out] (TensorFlow's layout, not PyTorch's [Out, In]), bias [Out] or null. */
export function dense(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[0])
    throw new Error(
      `dense: input ${formatShape(x.shape)} and weight ${formatShape(w.shape)} must be [N, In] and [In, Out]`,
    );
  const [batch, inputs] = x.shape;
  const outputs = w.shape[1];
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outputs))
    throw new Error(`dense: bias ${formatShape(bias.shape)} must be [${outputs}]`);
  const tile = x.gpu.kernels.constant('dense.matmul', 'TILE');
  if (batch > 65535 * tile || outputs > 65535 * tile)
    throw new Error(
      `dense: ${formatShape(x.shape)} x ${formatShape(w.shape)} needs more than 65,535 workgroups a dimension`,
    );
  const out = matmul(
    { t: x, rows: inputs, cols: 1 },
    { t: w, rows: outputs, cols: 1 },
    [batch, inputs, outputs],
    bias,
    null,
  );
  return x.gpu.tape.record(
    'dense',
    bias ? [x, w, bias] : [x, w],
    out,
    (g, needs, into) => [
      // dx = g w^T [N, In]; dw = x^T g [In, Out]; dbias = the column sums of g.
      needs[0]
        ? matmul(
            { t: g, rows: outputs, cols: 1 },
            { t: w, rows: 1, cols: outputs },
            [batch, outputs, inputs],
            null,
            into[0],
          )
        : null,
      needs[1]
        ? matmul(
            { t: x, rows: 1, cols: inputs },
            { t: g, rows: outputs, cols: 1 },
            [inputs, batch, outputs],
            null,
            into[1],
          )
        : null,
      bias && needs[2]
        ? channelReduce(g, { batch, channels: outputs, inner: 1, mode: ReduceMode.Sum, into: into[2] })
        : null,
    ],
    [x, w],
  );
}
