/**
 * Layer ops: what a model's layers run, each one entry point that picks its fused path from the
 * layer mode, so a module only decides its mode (`layerRun`) and passes its parameters.
 *
 * - 'train': batch statistics and the tape records; a convolution's epilogue writes its output's
 *   moments for the BatchNorm after it (one read of the map less).
 * - 'eval': running statistics, every layer its own pass (gradients may flow, intermediates may be
 *   captured); BatchNorm still fuses its add and ReLU unless its output is captured.
 * - 'folded': eval with no gradient and nothing captured: a BatchNorm folded into the convolution
 *   before it, with the add and the ReLU, in the convolution's store.
 */
import type { Tensor, Engine } from '../tensor.js';
import { conv2d, conv2dWithMoments, conv2dFused } from './conv2d.js';
import type { Conv2dOptions } from './conv2d-variants.js';
import { batchNorm2d, foldBatchNorm, type BatchNormParams } from './batchnorm.js';
import type { MomentPartials } from './reduce.js';
import { add, relu } from './elementwise.js';

export type LayerMode = 'train' | 'eval' | 'folded';

/** How layers run in one forward: the mode, and where intermediates go. */
export interface LayerRun {
  mode: LayerMode;
  /**
   * Receives intermediates as `<layer name>out` (a gate's input as `<fc1's name>in`); no value that
   * is captured is fused away.
   */
  capture?: (name: string, t: Tensor) => void;
}

/** The mode of a forward in training or not, with or without capture, on an engine's tape as it is now. */
export function layerRun(training: boolean, gpu: Engine, capture?: LayerRun['capture']): LayerRun {
  const mode: LayerMode = training ? 'train' : capture || gpu.tape.gradEnabled ? 'eval' : 'folded';
  return { mode, capture };
}

/** A convolution's operands; `name` (its module's prefix) names its captured output. */
export interface ConvLayer {
  name: string;
  weight: Tensor;
  bias: Tensor | null;
  options: Conv2dOptions;
}

/** A BatchNorm's parameters and running statistics; `name` names its captured output. */
export interface BatchNormLayer extends BatchNormParams {
  name: string;
}

/** What follows a BatchNorm: `+ residual` (same shape), then ReLU. */
export interface BatchNormThen {
  residual?: Tensor;
  relu?: boolean;
}

/** A convolution on its own, its output captured. */
export function convLayer(run: LayerRun, conv: ConvLayer, x: Tensor): Tensor {
  const y = conv2d(x, conv.weight, conv.bias, conv.options);
  run.capture?.(`${conv.name}out`, y);
  return y;
}

/**
 * conv -> BN (-> + residual) (-> ReLU): folded into one convolution pass ('folded'), the
 * convolution writing the BN's moments ('train'), or the convolution then a BN that fuses the rest
 * ('eval'). While intermediates are captured, the BN's own output is kept (the fixtures hold it
 * before the add and the ReLU), so nothing follows it fused.
 */
export function convBn(
  run: LayerRun,
  conv: ConvLayer,
  bn: BatchNormLayer,
  x: Tensor,
  then: BatchNormThen = {},
): Tensor {
  if (run.mode === 'folded') {
    const { scale, shift } = foldedBatchNorm(conv, bn);
    return conv2dFused(x, conv.weight, shift, { ...conv.options, scale, ...then });
  }
  if (run.mode === 'eval') return batchNormLayer(run, bn, convLayer(run, conv, x), then);
  const { out, moments } = conv2dWithMoments(x, conv.weight, conv.bias, conv.options);
  run.capture?.(`${conv.name}out`, out);
  const y = batchNormLayer(run, bn, out, then, moments);
  moments.partials.dispose();
  return y;
}

/** BN (-> + residual) (-> ReLU) of x, fused unless the BN's output is captured. */
export function batchNormLayer(
  run: LayerRun,
  bn: BatchNormLayer,
  x: Tensor,
  then: BatchNormThen = {},
  moments?: MomentPartials,
): Tensor {
  const training = run.mode === 'train';
  const { capture } = run;
  if (!capture)
    return batchNorm2d(x, bn.weight, bn.bias, bn.runningMean, bn.runningVar, { training, moments, ...then });
  const y = batchNorm2d(x, bn.weight, bn.bias, bn.runningMean, bn.runningVar, { training, moments });
  capture(`${bn.name}out`, y);
  const r = then.residual ? add(y, then.residual) : y;
  return then.relu ? relu(r) : r;
}

/**
 * conv(body()) + branch(). In 'folded' mode the branch runs first, so that the convolution adds it
 * as it stores (one pass over the map less); otherwise body, convolution, branch and the add run in
 * that order (the tape and the captured intermediates see them so), the convolution's output also
 * captured as `bodyName`.
 */
export function convPlusBranch(
  run: LayerRun,
  body: () => Tensor,
  conv: ConvLayer,
  branch: () => Tensor,
  bodyName: string,
): Tensor {
  if (run.mode === 'folded') {
    const residual = branch();
    return conv2dFused(body(), conv.weight, conv.bias, { ...conv.options, residual });
  }
  const y = convLayer(run, conv, body());
  run.capture?.(bodyName, y);
  return add(y, branch());
}

/**
 * An eval-mode `bn` after `conv` as the per-channel `acc * scale + shift` of the convolution's
 * output (foldBatchNorm, with the convolution's bias), made again only when one of them was written.
 */
export function foldedBatchNorm(conv: ConvLayer, bn: BatchNormLayer): { scale: Tensor; shift: Tensor } {
  const gamma = bn.weight;
  const sources = [gamma, bn.bias, bn.runningMean, bn.runningVar, ...(conv.bias ? [conv.bias] : [])];
  return gamma.gpu.derive(sources, 'eval BatchNorm folded after a conv', () => {
    const folded = foldBatchNorm(gamma, bn.bias, bn.runningMean, bn.runningVar, conv.bias);
    [folded.scale, folded.shift].forEach((t) => gamma.gpu.tape.untrack(t));
    return { ...folded, dispose: () => [folded.scale, folded.shift].forEach((t) => t.dispose()) };
  });
}
