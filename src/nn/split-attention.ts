/**
 * Split attention (ResNeSt, radix R, cardinality 1) in one place: the module, and `splitAttend`, the
 * op around its gate, whose kernels (shaders/attention.wgsl) are the only passes over the
 * [B, R*C, H, W] splits: pooling and the attention-weighted sum forward; the attention's gradient
 * (one reduction) and the splits' gradient (written once) backward.
 */
import { Tensor, formatShape } from '../tensor.js';
import { dims4 } from '../shape.js';
import { batchNormBackward, type BatchNormForward } from '../ops/batchnorm.js';
import {
  Module,
  Conv2d,
  BatchNorm2d,
  convBn,
  foldedBatchNorm,
  pureInference,
  type ModelState,
  type StateEntry,
} from './module.js';

/** Lanes per (b, c) pair in attention.wgsl's reductions (its PAIR_LANES). */
const PAIR_LANES = 8;
/** Output vec4s per invocation of attention.attend where planes hold whole vec4s (its QUADS). */
const ATTEND_QUADS = 4;
/** Hidden units attention.gate holds in workgroup memory (its GATE_HIDDEN_MAX). */
export const GATE_HIDDEN_MAX = 1024;

/**
 * Split attention around a gate. gap = mean over (H, W) of the sum of z's R channel chunks
 * ([B, R*C, H, W] -> [B, C, 1, 1]); logits = gate(gap) ([B, R*C, 1, 1], recorded ops whose result
 * depends on gap); a = softmax over k of logits[b, k*C + c]; out[b, c] = sum_k a[b, k*C + c] *
 * z[b, k*C + c] ([B, C, H, W]).
 *
 * z is read by the pooling and by the weighted sum, so its gradient has two terms; instead of the
 * tape summing two [B, R*C, H, W] gradients, the weighted sum's rule (which runs first) hands its
 * output gradient and a to the pooling's rule, which writes dz = a * g + dgap / (H*W) in one pass.
 *
 * With `normalized`, z is not given but made where it is read: `z` is then the input of the
 * BatchNorm + ReLU that makes the splits (normalized.x), with that BatchNorm's statistics; the
 * splits are never stored, and the pooling's rule goes on through the BatchNorm's backward, so the
 * gradients are those of x, gamma and beta.
 */
export function splitAttend(
  z: Tensor,
  radix: number,
  gate: (gap: Tensor) => Tensor,
  normalized?: BatchNormForward,
): Tensor {
  const [b, rc, h, w] = dims4('splitAttend', z);
  if (!Number.isInteger(radix) || radix < 1 || rc % radix)
    throw new Error(`splitAttend: ${rc} channels do not split into radix ${radix}`);
  const { gpu } = z;
  const channels = rc / radix;
  const inner = h * w;
  const pairs = b * channels;
  if (normalized && (normalized.x !== z || !normalized.options.relu || normalized.options.residual))
    throw new Error('splitAttend: normalized splits come from a BatchNorm + ReLU of z itself');
  const uniforms = (n: number) => ({ n, channels, inner, radix, scale: 1 / inner, normalized: normalized ? 1 : 0 });
  const bnStats = normalized?.stats ?? null;

  const gap = Tensor.empty(gpu, [b, channels, 1, 1]);
  gpu.kernels.dispatch('attention.pool_splits', {
    uniforms: uniforms(pairs),
    buffers: { out: gap, z, bn_stats: bnStats },
    invocations: pairs * PAIR_LANES,
  });
  let handoff: { g: Tensor; att: Tensor } | null = null;
  const bnInputs = normalized ? [normalized.bn.weight, normalized.bn.bias] : [];
  gpu.tape.record(
    'poolSplits',
    [z, ...bnInputs],
    gap,
    (dgap, needs, into) => {
      if (!handoff)
        throw new Error(
          'splitAttend: the gradient of the weighted sum did not reach the pooling (does the gate ignore its input?)',
        );
      const dz = Tensor.empty(gpu, z.shape);
      // Where planes hold whole vec4s, an invocation takes a vec4 of g and writes the R of dz it feeds.
      const invocations = Math.ceil(dz.size / (inner % 4 ? 4 : 4 * radix));
      gpu.kernels.dispatch('attention.splits_backward', {
        uniforms: uniforms(dz.size),
        buffers: { dst: dz, g: handoff.g, att: handoff.att, dgap },
        invocations,
      });
      return normalized ? batchNormBackward(dz, normalized, needs, into).slice(0, 3) : [dz];
    },
    normalized ? [z, normalized.stats] : [],
  );

  const logits = gate(gap);
  if (logits.size !== b * rc || logits.shape.length !== 4 || logits.shape[2] !== 1 || logits.shape[3] !== 1)
    throw new Error(`splitAttend: the gate gave ${formatShape(logits.shape)} for splits ${formatShape(z.shape)}`);
  if (gap.requiresGrad && !logits.requiresGrad)
    throw new Error("splitAttend: the gate's logits do not depend on its input");
  const out = Tensor.empty(gpu, [b, channels, h, w]);
  // Where planes hold whole vec4s, an invocation writes up to ATTEND_QUADS of one plane, else one.
  const attendInvocations = inner % 4 ? Math.ceil(out.size / 4) : pairs * Math.ceil(inner / (4 * ATTEND_QUADS));
  gpu.kernels.dispatch('attention.attend', {
    uniforms: uniforms(out.size),
    buffers: { dst: out, z, logits, bn_stats: bnStats },
    invocations: attendInvocations,
  });
  return gpu.tape.record(
    'attend',
    [logits, z],
    out,
    (g, needs) => {
      const dLogits = Tensor.empty(gpu, logits.shape);
      const att = Tensor.empty(gpu, logits.shape);
      gpu.kernels.dispatch('attention.attend_backward', {
        uniforms: uniforms(pairs),
        buffers: { out: dLogits, att_out: att, z, g, logits, bn_stats: bnStats },
        invocations: pairs * PAIR_LANES,
      });
      if (needs[1]) {
        gpu.tape.keepFor(gap, g);
        gpu.tape.keepFor(gap, att);
        handoff = { g, att };
      }
      return [needs[0] ? dLogits : null, null];
    },
    bnStats ? [logits, z, bnStats] : [logits, z],
  );
}

/**
 * The split-attention gate in inference, in one dispatch: logits = fc2(relu(fc1(gap) * scale +
 * shift)), gap [B, C, 1, 1], fc1's weight w1 [hidden, C, 1, 1], fc2's w2 [R*C, hidden, 1, 1] and
 * bias b2, with fc1's bias and its eval-mode BatchNorm folded into scale and shift (foldBatchNorm).
 * Not recorded: call it under noGrad.
 */
export function inferenceGate(gap: Tensor, w1: Tensor, scale: Tensor, shift: Tensor, w2: Tensor, b2: Tensor): Tensor {
  const { gpu } = gap;
  if (gpu.tape.gradEnabled && [gap, w1, scale, shift, w2, b2].some((t) => t.requiresGrad))
    throw new Error('inferenceGate records no gradient: call it under noGrad');
  const [batch, channels, h, w] = dims4('inferenceGate', gap);
  const [hidden, outputs] = [w1.shape[0], w2.shape[0]];
  const fits = (t: Tensor, shape: number[]) =>
    t.shape.length === shape.length && shape.every((d, i) => t.shape[i] === d);
  if (h !== 1 || w !== 1)
    throw new Error(`inferenceGate: the pooled input must be [B, C, 1, 1], got ${formatShape(gap.shape)}`);
  if (
    !fits(w1, [hidden, channels, 1, 1]) ||
    !fits(w2, [outputs, hidden, 1, 1]) ||
    !fits(scale, [hidden]) ||
    !fits(shift, [hidden]) ||
    !fits(b2, [outputs])
  ) {
    const shapes = [w1, w2, scale, shift, b2].map((t) => formatShape(t.shape)).join(', ');
    throw new Error(
      `inferenceGate: fc1, fc2, scale, shift and bias ${shapes} do not chain from a [B, ${channels}, 1, 1] input`,
    );
  }
  if (hidden > GATE_HIDDEN_MAX) throw new Error(`inferenceGate: ${hidden} hidden units, at most ${GATE_HIDDEN_MAX}`);
  const logits = Tensor.empty(gpu, [batch, outputs, 1, 1]);
  gpu.kernels.dispatch('attention.gate', {
    uniforms: { batch, channels, hidden, outputs },
    buffers: { out: logits, gap, w1, w2, hidden_scale: scale, hidden_shift: shift, b2 },
    groups: batch,
  });
  return logits;
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
    const gate = this.gate(s, x);
    if (!s.training || s.capture)
      return this.out(s, 'out', splitAttend(convBn(s, this.conv, this.bn0, x, { relu: true }), this.radix, gate));
    // Training: the splits (bn0 + ReLU of the conv's output, 4x the block's width) are made where
    // they are read instead of stored, and bn0's backward runs inside splitAttend's.
    const { out, moments } = this.conv.forwardWithMoments(s, x);
    const normalized = this.bn0.statistics(s, out, { relu: true }, moments);
    moments.partials.dispose();
    const y = splitAttend(out, this.radix, gate, normalized);
    // The tape holds its own reference to the statistics.
    normalized.stats.dispose();
    return this.out(s, 'out', y);
  }
  /** fc1 -> bn1 -> ReLU -> fc2 on the pooled splits: in pure inference one kernel, else the modules. */
  private gate(s: ModelState, x: Tensor): (gap: Tensor) => Tensor {
    if (pureInference(s, x) && this.fc1.cout <= GATE_HIDDEN_MAX) {
      const { scale, shift } = foldedBatchNorm(s, this.fc1, this.bn1);
      const [w1] = this.fc1.operands(s);
      // fc2 is built with a bias (the official module's default).
      const [w2, b2] = this.fc2.operands(s);
      return (gap) => inferenceGate(gap, w1, scale, shift, w2, b2!);
    }
    return (gap) =>
      this.fc2.forward(s, convBn(s, this.fc1, this.bn1, this.out(s, 'conv1x1_1.in', gap), { relu: true }));
  }
}
