/** The split-attention module: its parameters under the official names; the op is ops/split-attention.ts. */
import type { Tensor } from '../tensor.js';
import { splitAttention } from '../ops/index.js';
import { Module, Conv2d, BatchNorm2d, type ModelState, type StateEntry } from './module.js';

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
    return splitAttention(
      this.run(s, x),
      {
        name: this.prefix,
        radix: this.radix,
        conv: this.conv.layer(s),
        bn0: this.bn0.layer(s),
        fc1: this.fc1.layer(s),
        bn1: this.bn1.layer(s),
        fc2: this.fc2.layer(s),
      },
      x,
    );
  }
}
