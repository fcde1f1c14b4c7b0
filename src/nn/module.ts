/**
 * Modules: each names its state_dict entries (PyTorch names and order: own parameters, own buffers,
 * then children) and runs its forward from a shared `ModelState`.
 */
import type { Tensor, Shape } from '../tensor.js';
import type { ParameterSet } from '../optim/params.js';
import { conv2d, conv2dFused, batchNorm2d, foldBatchNorm, relu, add, globalAvgPool, chunkSum } from '../ops/index.js';
import { radixSoftmax, attend } from './split-attention.js';

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
    const e: StateEntry[] = [{ name: `${this.prefix}weight`, shape: [this.cout, this.cin / this.groups, this.k, this.k], kind: 'param' }];
    if (this.bias) e.push({ name: `${this.prefix}bias`, shape: [this.cout], kind: 'param' });
    return e;
  }
  forward(s: ModelState, x: Tensor): Tensor {
    const w = s.params.get(`${this.prefix}weight`);
    const b = this.bias ? s.params.get(`${this.prefix}bias`) : null;
    return this.out(s, 'out', conv2d(x, w, b, { padding: (this.k - 1) / 2, groups: this.groups }));
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
  forward(s: ModelState, x: Tensor, then: { residual?: Tensor; relu?: boolean } = {}): Tensor {
    const p = this.prefix;
    const fuse = !s.capture;
    const y = batchNorm2d(x, s.params.get(`${p}weight`), s.params.get(`${p}bias`), s.buffers.get(`${p}running_mean`)!, s.buffers.get(`${p}running_var`)!, {
      training: s.training,
      ...(fuse ? then : {}),
    });
    if (s.training) s.counters.set(`${p}num_batches_tracked`, (s.counters.get(`${p}num_batches_tracked`) ?? 0) + 1);
    if (fuse) return y;
    this.out(s, 'out', y);
    const r = then.residual ? add(y, then.residual) : y;
    return then.relu ? relu(r) : r;
  }
}

/**
 * conv -> BN (-> + residual) (-> ReLU). In pure inference (eval mode, no gradient, nothing
 * captured) the BN is folded into the convolution's epilogue with the add and the ReLU: one pass.
 */
function convBn(s: ModelState, conv: Conv2d, bn: BatchNorm2d, x: Tensor, then: { residual?: Tensor; relu?: boolean } = {}): Tensor {
  if (s.training || s.capture || x.gpu.tape.gradEnabled) return bn.forward(s, conv.forward(s, x), then);
  const w = s.params.get(`${conv.prefix}weight`);
  const convBias = conv.bias ? s.params.get(`${conv.prefix}bias`) : null;
  const gamma = s.params.get(`${bn.prefix}weight`);
  const { scale, shift } = x.gpu.derive(gamma, () => {
    const folded = foldBatchNorm(gamma, s.params.get(`${bn.prefix}bias`), s.buffers.get(`${bn.prefix}running_mean`)!, s.buffers.get(`${bn.prefix}running_var`)!, convBias);
    [folded.scale, folded.shift].forEach((t) => x.gpu.tape.untrack(t));
    return { ...folded, dispose: () => [folded.scale, folded.shift].forEach((t) => t.dispose()) };
  });
  return conv2dFused(x, w, shift, { padding: (conv.k - 1) / 2, groups: conv.groups, scale, ...then });
}

/** Split attention (radix R, cardinality 1): the official `Internal_feature_Split_Attention`. */
export class SplitAttention extends Module {
  readonly conv: Conv2d;
  readonly bn0: BatchNorm2d;
  readonly fc1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly fc2: Conv2d;
  constructor(
    prefix: string,
    readonly channels: number,
    readonly radix = 4,
  ) {
    super(prefix);
    const inter = Math.max(Math.floor((channels * radix) / 4), 32);
    this.conv = new Conv2d(`${prefix}conv.`, channels, channels * radix, 3, false, radix);
    this.bn0 = new BatchNorm2d(`${prefix}bn0.`, channels * radix);
    this.fc1 = new Conv2d(`${prefix}conv1x1_1.`, channels, inter, 1);
    this.bn1 = new BatchNorm2d(`${prefix}bn1.`, inter);
    this.fc2 = new Conv2d(`${prefix}conv1x1_2.`, inter, channels * radix, 1);
  }
  entries(): StateEntry[] {
    return [this.conv, this.bn0, this.fc1, this.bn1, this.fc2].flatMap((m) => m.entries());
  }
  forward(s: ModelState, x: Tensor): Tensor {
    const splits = convBn(s, this.conv, this.bn0, x, { relu: true });
    // The pooled sum of the splits, pooled first: [B, R*C, 1, 1] is cheap to sum, [B, R*C, H, W] is not.
    const gap = this.out(s, 'conv1x1_1.in', chunkSum(globalAvgPool(splits), this.radix));
    const logits = this.fc2.forward(s, convBn(s, this.fc1, this.bn1, gap, { relu: true }));
    const attention = radixSoftmax(logits, this.radix);
    return this.out(s, 'out', attend(attention, splits, this.radix));
  }
}

/** ISAB: relu(bn3(conv3(SA(relu(bn1(conv1(x)))))) + x); owns an unused `skip` 1x1 conv. */
export class ISAB extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: SplitAttention;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly skip: Conv2d;
  /** Ablation: without split attention, the detail path keeps conv1/bn1/relu and conv3/bn3 only. */
  useAttention = true;
  constructor(prefix: string, channels: number) {
    super(prefix);
    this.conv1 = new Conv2d(`${prefix}conv1.`, channels, channels, 1, false);
    this.bn1 = new BatchNorm2d(`${prefix}bn1.`, channels);
    this.conv2 = new SplitAttention(`${prefix}conv2.`, channels);
    this.conv3 = new Conv2d(`${prefix}conv3.`, channels, channels, 1, false);
    this.bn3 = new BatchNorm2d(`${prefix}bn3.`, channels);
    this.skip = new Conv2d(`${prefix}skip.`, channels, channels, 1, false);
  }
  entries(): StateEntry[] {
    return [this.conv1, this.bn1, this.conv2, this.conv3, this.bn3, this.skip].flatMap((m) => m.entries());
  }
  forward(s: ModelState, x: Tensor): Tensor {
    let y = convBn(s, this.conv1, this.bn1, x, { relu: true });
    if (this.useAttention) y = this.conv2.forward(s, y);
    return this.out(s, 'out', convBn(s, this.conv3, this.bn3, y, { residual: x, relu: true }));
  }
}

/** ESAG(x) = conv3x3(ISAB_I(...ISAB_1(x))) + ISAB_IA(x). */
export class ESAG extends Module {
  readonly blocks: ISAB[];
  readonly conv: Conv2d;
  readonly ia: ISAB;
  /** Ablation: without the structure path (IA branch). */
  useStructurePath = true;
  constructor(prefix: string, channels: number, blocks: number) {
    super(prefix);
    this.blocks = Array.from({ length: blocks }, (_, i) => new ISAB(`${prefix}body.${i}.`, channels));
    this.conv = new Conv2d(`${prefix}body.${blocks}.`, channels, channels, 3);
    this.ia = new ISAB(`${prefix}IA.`, channels);
  }
  entries(): StateEntry[] {
    return [...this.blocks, this.conv, this.ia].flatMap((m) => m.entries());
  }
  forward(s: ModelState, x: Tensor): Tensor {
    let r = x;
    for (const b of this.blocks) r = b.forward(s, r);
    r = this.out(s, 'body.out', this.conv.forward(s, r));
    if (!this.useStructurePath) return this.out(s, 'out', r);
    return this.out(s, 'out', add(r, this.ia.forward(s, x)));
  }
}
