/** SISN's blocks: the ISAB (detail path with split attention) and the ESAG that groups them. */
import type { Tensor } from '../tensor.js';
import { convBn, convLayer, convPlusBranch } from '../ops/index.js';
import { Module, Conv2d, BatchNorm2d, type ModelState, type StateEntry } from './module.js';
import { SplitAttention } from './split-attention.js';

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
    const run = this.run(s, x);
    let y = convBn(run, this.conv1.layer(s), this.bn1.layer(s), x, { relu: true });
    if (this.useAttention) y = this.conv2.forward(s, y);
    return this.out(s, 'out', convBn(run, this.conv3.layer(s), this.bn3.layer(s), y, { residual: x, relu: true }));
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
    const run = this.run(s, x);
    const body = () => this.blocks.reduce((r, b) => b.forward(s, r), x);
    if (!this.useStructurePath)
      return this.out(s, 'out', this.out(s, 'body.out', convLayer(run, this.conv.layer(s), body())));
    const structure = () => this.ia.forward(s, x);
    return this.out(s, 'out', convPlusBranch(run, body, this.conv.layer(s), structure, `${this.prefix}body.out`));
  }
}
