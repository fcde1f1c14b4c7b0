/**
 * Split attention's ops (ResNeSt, radix R, cardinality 1): `splitAttend`, the op around its gate,
 * whose kernels (shaders/attention.wgsl) are the only passes over the [B, R*C, H, W] splits: pooling
 * and the attention-weighted sum forward; the attention's gradient (one reduction) and the splits'
 * gradient (written once) backward. And `inferenceGate`, the gate in one dispatch for inference.
 */
import { Tensor, formatShape, sameShape } from '../tensor.js';
import { dims4 } from '../shape.js';
import { batchNormBackward, type BatchNormForward } from './batchnorm.js';
import type { ChannelSums } from './conv2d.js';

/**
 * The most hidden units attention.gate holds in workgroup memory (its GATE_HIDDEN_MAX), read from
 * the shader of the engine `gpu`.
 */
export function gateHiddenMax(gpu: Tensor['gpu']): number {
  return gpu.kernels.constant('attention.gate', 'GATE_HIDDEN_MAX');
}

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
 * gradients are those of x, gamma and beta. Both rules take the splits' inputs (z, and gamma and
 * beta when normalized), so any of them needing a gradient makes the hand-off.
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
  // What the splits are made of: z, and the BatchNorm's gamma and beta when it is applied here.
  const splitInputs = normalized ? [z, normalized.bn.weight, normalized.bn.bias] : [z];
  const pairLanes = gpu.kernels.constant('attention.pool_splits', 'PAIR_LANES');

  const gap = Tensor.empty(gpu, [b, channels, 1, 1]);
  gpu.kernels.dispatch('attention.pool_splits', {
    uniforms: uniforms(pairs),
    buffers: { out: gap, z, bn_stats: bnStats },
    invocations: pairs * pairLanes,
  });
  let handoff: { g: Tensor; att: Tensor } | null = null;
  gpu.tape.record(
    'poolSplits',
    splitInputs,
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
  const out = launchAttend(z, radix, logits, bnStats);
  return gpu.tape.record(
    'attend',
    [logits, ...splitInputs],
    out,
    (g, needs) => {
      const dLogits = Tensor.empty(gpu, logits.shape);
      const att = Tensor.empty(gpu, logits.shape);
      gpu.kernels.dispatch('attention.attend_backward', {
        uniforms: uniforms(pairs),
        buffers: { out: dLogits, att_out: att, z, g, logits, bn_stats: bnStats },
        invocations: pairs * pairLanes,
      });
      // The splits' gradients are all the pooling's rule's to write (one pass, see above).
      if (needs.slice(1).some(Boolean)) {
        gpu.tape.keepFor(gap, g);
        gpu.tape.keepFor(gap, att);
        handoff = { g, att };
      }
      return [needs[0] ? dLogits : null, ...splitInputs.map(() => null)];
    },
    bnStats ? [logits, z, bnStats] : [logits, z],
  );
}

/**
 * out[b, c] = sum_k a[b, k*C + c] * z[b, k*C + c] ([B, C, H, W]), a = softmax over k of the
 * logits (one attention.attend dispatch); with bnStats, z made from the BatchNorm input (splitAttend).
 */
function launchAttend(z: Tensor, radix: number, logits: Tensor, bnStats: Tensor | null): Tensor {
  const { gpu } = z;
  const [b, rc, h, w] = z.shape;
  const [channels, inner] = [rc / radix, h * w];
  const out = Tensor.empty(gpu, [b, channels, h, w]);
  // Where planes hold whole vec4s, an invocation writes up to QUADS vec4s of one plane, else one.
  const quads = gpu.kernels.constant('attention.attend', 'QUADS');
  const invocations = inner % 4 ? Math.ceil(out.size / 4) : b * channels * Math.ceil(inner / (4 * quads));
  gpu.kernels.dispatch('attention.attend', {
    uniforms: { n: out.size, channels, inner, radix, scale: 1 / inner, normalized: bnStats ? 1 : 0 },
    buffers: { dst: out, z, logits, bn_stats: bnStats },
    invocations,
  });
  return out;
}

/**
 * splitAttend's weighted sum in inference, the gate's logits given (inferencePooledGate's): z [B,
 * R*C, H, W], logits [B, R*C, 1, 1] -> [B, C, H, W]. Not recorded: call it under noGrad.
 */
export function attendSplits(z: Tensor, radix: number, logits: Tensor): Tensor {
  const [b, rc] = dims4('attendSplits', z);
  if (z.gpu.tape.gradEnabled && [z, logits].some((t) => t.requiresGrad))
    throw new Error('attendSplits records no gradient: call it under noGrad');
  if (!Number.isInteger(radix) || radix < 1 || rc % radix)
    throw new Error(`attendSplits: ${rc} channels do not split into radix ${radix}`);
  if (!sameShape(logits.shape, [b, rc, 1, 1]))
    throw new Error(
      `attendSplits: logits ${formatShape(logits.shape)} must be [${b}, ${rc}, 1, 1] ` +
        `for splits ${formatShape(z.shape)}`,
    );
  return launchAttend(z, radix, logits, null);
}

/** The folded gate's parameters: fc1's weight, its folded BatchNorm, fc2's weight and bias. */
export interface InferenceGateParams {
  w1: Tensor;
  scale: Tensor;
  shift: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/**
 * The split-attention gate in inference, in one dispatch: logits = fc2(relu(fc1(gap) * scale +
 * shift)), gap [B, C, 1, 1], fc1's weight w1 [hidden, C, 1, 1], fc2's w2 [R*C, hidden, 1, 1] and
 * bias b2, with fc1's bias and its eval-mode BatchNorm folded into scale and shift (foldBatchNorm).
 * Not recorded: call it under noGrad.
 */
export function inferenceGate(gap: Tensor, w1: Tensor, scale: Tensor, shift: Tensor, w2: Tensor, b2: Tensor): Tensor {
  const [batch, channels, h, w] = dims4('inferenceGate', gap);
  if (h !== 1 || w !== 1)
    throw new Error(`inferenceGate: the pooled input must be [B, C, 1, 1], got ${formatShape(gap.shape)}`);
  return launchGate('inferenceGate', { w1, scale, shift, w2, b2 }, gap, batch, channels, {
    parts: 0,
    radix: 0,
    scale: 0,
  });
}

/**
 * inferenceGate on the pooled splits, pooled in the same dispatch from their sums in pieces (as
 * conv2dFusedWithSums wrote them for its output, the splits z [B, R*C, H, W]): splitAttend's
 * pooling and gate, the logits [B, R*C, 1, 1] (what attendSplits takes), without a pass over the
 * splits. Not recorded: call it under noGrad.
 */
export function inferencePooledGate(sums: ChannelSums, radix: number, gate: InferenceGateParams): Tensor {
  const [batch, rc, h, w] = sums.shape;
  if (!Number.isInteger(radix) || radix < 1 || rc % radix)
    throw new Error(`inferencePooledGate: ${rc} channels do not split into radix ${radix}`);
  const { parts } = sums;
  if (!Number.isInteger(parts) || parts < 1 || sums.partials.size !== rc * batch * parts)
    throw new Error(
      `inferencePooledGate: ${sums.partials.size} partial sums are not ${parts} per sample and channel of ` +
        formatShape(sums.shape),
    );
  return launchGate('inferencePooledGate', gate, sums.partials, batch, rc / radix, {
    parts,
    radix,
    scale: 1 / (h * w),
  });
}

function launchGate(
  op: string,
  { w1, scale, shift, w2, b2 }: InferenceGateParams,
  input: Tensor,
  batch: number,
  channels: number,
  pooling: { parts: number; radix: number; scale: number },
): Tensor {
  const { gpu } = input;
  if (gpu.tape.gradEnabled && [input, w1, scale, shift, w2, b2].some((t) => t.requiresGrad))
    throw new Error(`${op} records no gradient: call it under noGrad`);
  const [hidden, outputs] = [w1.shape[0], w2.shape[0]];
  if (
    !sameShape(w1.shape, [hidden, channels, 1, 1]) ||
    !sameShape(w2.shape, [outputs, hidden, 1, 1]) ||
    !sameShape(scale.shape, [hidden]) ||
    !sameShape(shift.shape, [hidden]) ||
    !sameShape(b2.shape, [outputs]) ||
    (pooling.radix && outputs !== channels * pooling.radix)
  ) {
    const shapes = [w1, w2, scale, shift, b2].map((t) => formatShape(t.shape)).join(', ');
    const pooled = pooling.radix ? ` (pooled from ${pooling.radix} splits)` : '';
    throw new Error(
      `${op}: fc1, fc2, scale, shift and bias ${shapes} do not chain from a [B, ${channels}, 1, 1] input${pooled}`,
    );
  }
  const hiddenMax = gateHiddenMax(gpu);
  if (hidden > hiddenMax) throw new Error(`${op}: ${hidden} hidden units, at most ${hiddenMax}`);
  if (channels > hiddenMax) throw new Error(`${op}: ${channels} input channels, at most ${hiddenMax}`);
  const out = Tensor.empty(gpu, [batch, outputs, 1, 1]);
  gpu.kernels.dispatch('attention.gate', {
    uniforms: { batch, channels, hidden, outputs, ...pooling },
    buffers: { out, gap: input, w1, w2, hidden_scale: scale, hidden_shift: shift, b2 },
    groups: batch,
  });
  return out;
}
