/**
 * Split attention (ResNeSt, radix R, cardinality 1) in one place: the module, and its two ops, the
 * radix softmax and the attention-weighted sum of the splits (`attend`), each forward launch beside
 * its backward rule; their kernels are shaders/attention.wgsl.
 */
import { Tensor, formatShape } from '../tensor.js';
import { dims4 } from '../shape.js';
import { channelReduce, ReduceMode, globalAvgPool } from '../ops/reduce.js';
import { chunkSum } from '../ops/layout.js';
import { Module, Conv2d, BatchNorm2d, convBn, type ModelState, type StateEntry } from './module.js';

/**
 * Softmax over the R chunks of a [B, R*C, 1, 1] tensor, per channel: for each (b, c), the values at
 * channels k*C + c (k < R) become their softmax. ResNeSt's rSoftMax with cardinality 1.
 */
export function radixSoftmax(x: Tensor, radix: number): Tensor {
  if (x.shape.length !== 4 || x.shape[2] !== 1 || x.shape[3] !== 1) throw new Error(`radixSoftmax: expected [B, R*C, 1, 1], got ${formatShape(x.shape)}`);
  const [b, rc] = x.shape;
  if (!Number.isInteger(radix) || radix < 1 || rc % radix) throw new Error(`radixSoftmax: ${rc} channels do not split into radix ${radix}`);
  const channels = rc / radix;
  const launch = (kernel: string, src: Tensor, s: Tensor) => {
    const out = Tensor.empty(x.gpu, x.shape);
    x.gpu.kernels.dispatch(kernel, {
      uniforms: { pairs: b * channels, channels, radix },
      buffers: kernel.endsWith('backward') ? { out, x: src, s } : { out, x: src },
      invocations: b * channels,
    });
    return out;
  };
  const out = launch('attention.radix_softmax', x, x);
  return x.gpu.tape.record('radixSoftmax', [x], out, (g) => [launch('attention.radix_softmax_backward', g, out)], [out]);
}

/**
 * The attention-weighted sum of the R splits: out[b, c] = sum_k att[b, k*C + c] * z[b, k*C + c]
 * for att [B, R*C, 1, 1] and z [B, R*C, H, W]; in one pass, without the [B, R*C, H, W] product.
 */
export function attend(att: Tensor, z: Tensor, radix: number): Tensor {
  const [b, rc, h, w] = dims4('attend', z);
  if (!Number.isInteger(radix) || radix < 1 || rc % radix) throw new Error(`attend: ${rc} channels do not split into radix ${radix}`);
  if (att.size !== b * rc || att.shape.length !== 4 || att.shape[2] !== 1 || att.shape[3] !== 1) throw new Error(`attend: attention ${formatShape(att.shape)} does not match ${formatShape(z.shape)}`);
  const channels = rc / radix;
  const inner = h * w;
  const launch = (kernel: string, dst: Tensor, src: Tensor) => {
    z.gpu.kernels.dispatch(kernel, { uniforms: { n: dst.size, channels, inner, radix }, buffers: { dst, src, att }, invocations: Math.ceil(dst.size / 4) });
    return dst;
  };
  const out = launch('attention.attend', Tensor.empty(z.gpu, [b, channels, h, w]), z);
  return z.gpu.tape.record(
    'attend',
    [att, z],
    out,
    (g, needs) => {
      let dAtt: Tensor | null = null;
      if (needs[0]) {
        // dAtt[b, k*C + c] = sum_i z[b, k*C + c, i] * g[b, c, i]: z plane q pairs with g plane (q / RC) * C + q % C.
        dAtt = channelReduce(z, { batch: 1, channels: b * rc, inner, mode: ReduceMode.Dot, y: g, yPlanes: { group: rc, chunk: channels } }).view(att.shape);
      }
      return [dAtt, needs[1] ? launch('attention.attend_backward', Tensor.empty(z.gpu, z.shape), g) : null];
    },
    [att, z],
  );
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
