/**
 * Modules: each names its state_dict entries (PyTorch names and order: own parameters, own buffers,
 * then children) and runs its forward from a shared `ModelState`. The building blocks: Conv2d,
 * BatchNorm2d and conv -> BN (-> + residual) (-> ReLU).
 */
import type { Tensor, Shape } from '../tensor.js';
import type { ParameterSet } from '../optim/params.js';
import {
  conv2d,
  conv2dWithMoments,
  conv2dFused,
  batchNorm2d,
  foldBatchNorm,
  relu,
  add,
  type ConvEpilogue,
  type MomentPartials,
} from '../ops/index.js';
import { batchNormStatistics, type BatchNormForward, type BatchNormParams } from '../ops/batchnorm.js';

export type EntryKind = 'param' | 'buffer' | 'counter';

export interface StateEntry {
  name: string;
  shape: Shape;
  kind: EntryKind;
}

/** Everything a forward pass reads: parameters, BN buffers and counters, mode, optional capture. */
export interface ModelState {
  params: ParameterSet;
  buffers: Map<string, Tensor>;
  counters: Map<string, number>;
  training: boolean;
  /** Receives intermediate activations under the fixture names ('<module>.out' / '<module>.in'). */
  capture?: (name: string, t: Tensor) => void;
}

export abstract class Module {
  constructor(readonly prefix: string) {}
  abstract entries(): StateEntry[];
  abstract forward(s: ModelState, x: Tensor): Tensor;
  protected out(s: ModelState, suffix: string, t: Tensor): Tensor {
    s.capture?.(`${this.prefix}${suffix}`, t);
    return t;
  }
}

export class Conv2d extends Module {
  constructor(
    prefix: string,
    readonly cin: number,
    readonly cout: number,
    readonly k: number,
    readonly bias = true,
    readonly groups = 1,
  ) {
    super(prefix);
  }
  entries(): StateEntry[] {
    const e: StateEntry[] = [
      { name: `${this.prefix}weight`, shape: [this.cout, this.cin / this.groups, this.k, this.k], kind: 'param' },
    ];
    if (this.bias) e.push({ name: `${this.prefix}bias`, shape: [this.cout], kind: 'param' });
    return e;
  }
  forward(s: ModelState, x: Tensor): Tensor {
    return this.out(s, 'out', conv2d(x, ...this.operands(s)));
  }
  /** The forward, and its output's per-channel moments in pieces (for a training-mode BatchNorm). */
  forwardWithMoments(s: ModelState, x: Tensor): { out: Tensor; moments: MomentPartials } {
    const r = conv2dWithMoments(x, ...this.operands(s));
    this.out(s, 'out', r.out);
    return r;
  }
  /**
   * Pure inference only (conv2dFused): the forward with an epilogue, `shift` in the bias's place
   * (by default the layer's own bias; a folded BatchNorm's shift already holds it).
   */
  forwardFused(s: ModelState, x: Tensor, epilogue: ConvEpilogue, shift: Tensor | null = this.operands(s)[1]): Tensor {
    const [w, , options] = this.operands(s);
    return conv2dFused(x, w, shift, { ...options, ...epilogue });
  }
  /** The weight, the bias (null without one) and the conv2d options of this layer. */
  operands(s: ModelState) {
    const w = s.params.get(`${this.prefix}weight`);
    const b = this.bias ? s.params.get(`${this.prefix}bias`) : null;
    return [w, b, { padding: (this.k - 1) / 2, groups: this.groups }] as const;
  }
}

export class BatchNorm2d extends Module {
  constructor(
    prefix: string,
    readonly channels: number,
  ) {
    super(prefix);
  }
  entries(): StateEntry[] {
    const p = this.prefix;
    const c = [this.channels];
    return [
      { name: `${p}weight`, shape: c, kind: 'param' },
      { name: `${p}bias`, shape: c, kind: 'param' },
      { name: `${p}running_mean`, shape: c, kind: 'buffer' },
      { name: `${p}running_var`, shape: c, kind: 'buffer' },
      { name: `${p}num_batches_tracked`, shape: [], kind: 'counter' },
    ];
  }
  /**
   * BN, then optionally `+ residual` and ReLU, fused into one pass. While intermediates are being
   * captured the BN output itself is needed (the fixtures hold it pre-ReLU), so nothing is fused.
   */
  forward(
    s: ModelState,
    x: Tensor,
    then: { residual?: Tensor; relu?: boolean } = {},
    moments?: MomentPartials,
  ): Tensor {
    const fuse = !s.capture;
    const bn = this.params(s);
    const y = batchNorm2d(x, bn.weight, bn.bias, bn.runningMean, bn.runningVar, {
      training: s.training,
      moments,
      ...(fuse ? then : {}),
    });
    this.count(s);
    if (fuse) return y;
    this.out(s, 'out', y);
    const r = then.residual ? add(y, then.residual) : y;
    return then.relu ? relu(r) : r;
  }
  /**
   * The statistics this BN applies to x (batch statistics in training, the running ones updated),
   * and what its backward needs, for an op that applies it itself (splitAttend's normalized splits).
   */
  statistics(s: ModelState, x: Tensor, then: { relu?: boolean }, moments?: MomentPartials): BatchNormForward {
    const bn = this.params(s);
    const options = { training: s.training, moments, ...then };
    const stats = batchNormStatistics(x, bn, options);
    this.count(s);
    return { x, stats, bn, out: null, options };
  }
  private params(s: ModelState): BatchNormParams {
    const p = this.prefix;
    return {
      weight: s.params.get(`${p}weight`),
      bias: s.params.get(`${p}bias`),
      runningMean: s.buffers.get(`${p}running_mean`)!,
      runningVar: s.buffers.get(`${p}running_var`)!,
    };
  }
  private count(s: ModelState): void {
    const name = `${this.prefix}num_batches_tracked`;
    if (s.training) s.counters.set(name, (s.counters.get(name) ?? 0) + 1);
  }
}

/**
 * conv -> BN (-> + residual) (-> ReLU). In pure inference (eval mode, no gradient, nothing
 * captured) the BN is folded into the convolution's epilogue with the add and the ReLU: one pass.
 * In training the convolution's epilogue also writes its output's moments for the BN's statistics.
 */
export function convBn(
  s: ModelState,
  conv: Conv2d,
  bn: BatchNorm2d,
  x: Tensor,
  then: { residual?: Tensor; relu?: boolean } = {},
): Tensor {
  if (s.training) {
    // The convolution's epilogue finds the moments BatchNorm needs as it stores its output.
    const { out, moments } = conv.forwardWithMoments(s, x);
    const y = bn.forward(s, out, then, moments);
    moments.partials.dispose();
    return y;
  }
  if (!pureInference(s, x)) return bn.forward(s, conv.forward(s, x), then);
  const { scale, shift } = foldedBatchNorm(s, conv, bn);
  return conv.forwardFused(s, x, { scale, ...then }, shift);
}

/** Eval mode, no gradient, nothing captured: BatchNorms may be folded into what precedes them. */
export function pureInference(s: ModelState, x: Tensor): boolean {
  return !s.training && !s.capture && !x.gpu.tape.gradEnabled;
}

/**
 * An eval-mode `bn` after `conv` as the per-channel `acc * scale + shift` of the convolution's
 * output (foldBatchNorm, with the convolution's bias), made once per parameter version.
 */
export function foldedBatchNorm(s: ModelState, conv: Conv2d, bn: BatchNorm2d): { scale: Tensor; shift: Tensor } {
  const gamma = s.params.get(`${bn.prefix}weight`);
  const [, convBias] = conv.operands(s);
  return gamma.gpu.derive(gamma, () => {
    const folded = foldBatchNorm(
      gamma,
      s.params.get(`${bn.prefix}bias`),
      s.buffers.get(`${bn.prefix}running_mean`)!,
      s.buffers.get(`${bn.prefix}running_var`)!,
      convBias,
    );
    [folded.scale, folded.shift].forEach((t) => gamma.gpu.tape.untrack(t));
    return { ...folded, dispose: () => [folded.scale, folded.shift].forEach((t) => t.dispose()) };
  });
}
