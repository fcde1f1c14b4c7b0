/** L1 loss: mean absolute error over all elements (PyTorch `l1_loss`, reduction 'mean'). */
import { Tensor } from '../tensor.js';
import { assertSameShape } from './elementwise.js';
import { channelReduce, ReduceMode } from './reduce.js';

/** Returns a [1] tensor. The target gets no gradient. */
export function l1Loss(pred: Tensor, target: Tensor): Tensor {
  assertSameShape('l1Loss', pred, target);
  const n = pred.size;
  const out = channelReduce(pred, {
    batch: 1,
    channels: 1,
    inner: n,
    mode: ReduceMode.AbsDiff,
    y: target,
    scale: 1 / n,
  });
  return pred.gpu.tape.record(
    'l1Loss',
    [pred, target],
    out,
    (g, needs) => {
      if (needs[1]) throw new Error('l1Loss: gradient with respect to the target is not supported');
      const d = Tensor.empty(pred.gpu, pred.shape);
      pred.gpu.kernels.dispatch('loss.l1_backward', {
        uniforms: { n, inv_n: 1 / n },
        buffers: { out: d, pred, tgt: target, g },
        invocations: n,
      });
      return [d, null];
    },
    [pred, target],
  );
}
