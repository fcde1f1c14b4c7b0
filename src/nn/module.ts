/**
 * Modules: each names its state_dict entries (PyTorch names and order: own parameters, own buffers,
 * then children), holds nothing but those names, and runs its forward from a shared `ModelState` by
 * calling ops: a module decides its layer mode once (`layerRun`) and the layer ops (ops/layers.ts)
 * pick their fused paths from it. The building blocks: Conv2d and BatchNorm2d.
 */
import type { Tensor, Shape } from '../tensor.js';
import type { ParameterSet } from '../optim/params.js';
import {
  convLayer,
  batchNormLayer,
  layerRun,
  type ConvLayer,
  type BatchNormLayer,
  type LayerRun,
} from '../ops/index.js';

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
  /** This forward's layer mode (decided once, from the state and whether the tape records). */
  protected run(s: ModelState, x: Tensor): LayerRun {
    return layerRun(s.training, x.gpu, s.capture);
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
    return convLayer(this.run(s, x), this.layer(s), x);
  }
  /** The weight, the bias (null without one) and the options of this layer, for the layer ops. */
  layer(s: ModelState): ConvLayer {
    return {
      name: this.prefix,
      weight: s.params.get(`${this.prefix}weight`),
      bias: this.bias ? s.params.get(`${this.prefix}bias`) : null,
      options: { padding: (this.k - 1) / 2, groups: this.groups },
    };
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
  /** The BatchNorm alone (the layer ops fuse it with what precedes and follows it). */
  forward(s: ModelState, x: Tensor): Tensor {
    return batchNormLayer(this.run(s, x), this.layer(s), x);
  }
  /**
   * The parameters and running statistics of this layer, for the layer ops; in training, each
   * forward that runs it counts one batch (num_batches_tracked).
   */
  layer(s: ModelState): BatchNormLayer {
    const p = this.prefix;
    if (s.training) s.counters.set(`${p}num_batches_tracked`, (s.counters.get(`${p}num_batches_tracked`) ?? 0) + 1);
    return {
      name: p,
      weight: s.params.get(`${p}weight`),
      bias: s.params.get(`${p}bias`),
      runningMean: s.buffers.get(`${p}running_mean`)!,
      runningVar: s.buffers.get(`${p}running_var`)!,
    };
  }
}
