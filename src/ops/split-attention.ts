/**
 * The split-attention layer (ResNeSt's, radix R, cardinality 1; the official
 * `Internal_feature_Split_Attention`): a grouped convolution and bn0 + ReLU make the splits, a gate
 * (fc1 -> bn1 -> ReLU -> fc2) weighs them (splitAttend). One entry point picks the path per layer
 * mode (layers.ts): the splits made where they are read in training; folded, three kernels (the
 * splits' convolution also summing them, the pooling and gate in one, the weighted sum).
 */
import type { Tensor } from '../tensor.js';
import { conv2dWithMoments, conv2dFusedWithSums } from './conv2d.js';
import { batchNormStatistics, type BatchNormForward } from './batchnorm.js';
import {
  splitAttend,
  attendSplits,
  inferencePooledGate,
  gateHiddenMax,
  type InferenceGateParams,
} from './attention.js';
import { convBn, convLayer, foldedBatchNorm, type ConvLayer, type BatchNormLayer, type LayerRun } from './layers.js';

export interface SplitAttentionLayer {
  /** Names the captured output (`<name>out`). */
  name: string;
  radix: number;
  conv: ConvLayer;
  bn0: BatchNormLayer;
  fc1: ConvLayer;
  bn1: BatchNormLayer;
  /** With a bias (the official module's default). */
  fc2: ConvLayer;
}

/** Split attention of x [B, C, H, W] -> [B, C, H, W]. */
export function splitAttention(run: LayerRun, layer: SplitAttentionLayer, x: Tensor): Tensor {
  const { conv, bn0, radix } = layer;
  const folded = run.mode === 'folded' ? foldedGate(layer) : null;
  if (folded) {
    // The pooling reads the sums the splits' convolution wrote as it stored them, not the splits.
    const bn = foldedBatchNorm(conv, bn0);
    const splits = conv2dFusedWithSums(x, conv.weight, bn.shift, { ...conv.options, scale: bn.scale, relu: true });
    const logits = inferencePooledGate(splits.sums, radix, folded);
    const y = attendSplits(splits.out, radix, logits);
    [splits.out, splits.sums.partials, logits].forEach((t) => t.dispose());
    return y;
  }
  const gate = layerGate(run, layer);
  let y: Tensor;
  if (run.mode !== 'train' || run.capture) {
    y = splitAttend(convBn(run, conv, bn0, x, { relu: true }), radix, gate);
  } else {
    // Training: the splits (bn0 + ReLU of the conv's output, R times the layer's width) are made
    // where they are read instead of stored, and bn0's backward runs inside splitAttend's.
    const { out, moments } = conv2dWithMoments(x, conv.weight, conv.bias, conv.options);
    const options = { training: true, moments, relu: true };
    const normalized: BatchNormForward = {
      x: out,
      stats: batchNormStatistics(out, bn0, options),
      bn: bn0,
      out: null,
      options,
    };
    moments.partials.dispose();
    y = splitAttend(out, radix, gate, normalized);
    // The tape holds its own reference to the statistics.
    normalized.stats.dispose();
  }
  run.capture?.(`${layer.name}out`, y);
  return y;
}

/** The gate's folded parameters, where it runs folded in one kernel (its widths fit), else null. */
function foldedGate({ fc1, bn1, fc2 }: SplitAttentionLayer): InferenceGateParams | null {
  const max = gateHiddenMax(fc1.weight.gpu);
  if (fc1.weight.shape[0] > max || fc1.weight.shape[1] > max) return null;
  if (!fc2.bias) throw new Error(`splitAttention: ${fc2.name} has no bias`);
  const { scale, shift } = foldedBatchNorm(fc1, bn1);
  return { w1: fc1.weight, scale, shift, w2: fc2.weight, b2: fc2.bias };
}

/** fc1 -> bn1 -> ReLU -> fc2 on the pooled splits, as layers (train and eval; their outputs captured). */
function layerGate(run: LayerRun, { fc1, bn1, fc2 }: SplitAttentionLayer): (gap: Tensor) => Tensor {
  return (gap) => {
    run.capture?.(`${fc1.name}in`, gap);
    return convLayer(run, fc2, convBn(run, fc1, bn1, gap, { relu: true }));
  };
}
