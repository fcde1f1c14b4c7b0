/** conv2d: NCHW, stride 1, zero padding, groups, optional bias. Forward and backward (shaders/conv2d.wgsl). */
import { Tensor, formatShape } from '../tensor.js';
import { channelReduce, ReduceMode } from './reduce.js';
import { dims4 } from '../shape.js';

export interface Conv2dOptions {
  padding?: number;
  groups?: number;
  /** The kernel variant to launch (tests, the tuner); default: the one tuned for this adapter. */
  variant?: string;
}

/**
 * weight_grad's variants: `packed` puts the blocks of narrow layers (few input channels per group)
 * several to a workgroup, `wide` gives every block a workgroup of its own.
 */
const WEIGHT_GRAD_VARIANTS = ['packed', 'wide'];

/** Forward: output columns and channels per invocation (TX and the 16-channel tile of the shader); weight_grad: output channels per lane. */
const TILE_X = 8;
const TILE_OC = 16;
const GRAD_OC = 8;
const KMAX = 7;

/**
 * Packs weights for the forward kernel: [G][in_g][K*K][out_g padded to 16]. `transposed` packs the
 * forward weight [G*in_g, out_g, K, K] flipped, for the input gradient.
 */
function packWeight(w: Tensor, groups: number, inG: number, outG: number, k: number, transposed: boolean): Tensor {
  const outPad = Math.ceil(outG / TILE_OC) * TILE_OC;
  const packed = Tensor.empty(w.gpu, [groups * inG * k * k * outPad]);
  w.gpu.kernels.dispatch('conv2d.pack_weight', {
    uniforms: { groups, in_g: inG, out_g: outG, out_pad: outPad, transposed: transposed ? 1 : 0 },
    buffers: { out: packed, w_src: w },
    invocations: packed.size,
    constants: { K: k },
  });
  return packed;
}

/** What the forward kernel applies before storing: `relu?(acc * scale + bias + residual)`. */
export interface ConvEpilogue {
  scale?: Tensor;
  residual?: Tensor;
  relu?: boolean;
}

function launchForward(x: Tensor, packed: Tensor, cout: number, k: number, bias: Tensor | null, pad: number, groups: number, tag = '', epilogue: ConvEpilogue = {}): Tensor {
  const [batch, cin, h, wd] = x.shape as number[];
  const hout = h + 2 * pad - k + 1;
  const wout = wd + 2 * pad - k + 1;
  const out = Tensor.empty(x.gpu, [batch, cout, hout, wout]);
  const outPad = Math.ceil(cout / groups / TILE_OC) * TILE_OC;
  const ocBlocks = (groups * outPad) / TILE_OC;
  const xBlocks = Math.ceil(wout / TILE_X);
  x.gpu.kernels.dispatch('conv2d.forward', {
    tag,
    uniforms: {
      ...{ batch, cin, h, w: wd, cout, hout, wout, groups, pad, oc_blocks: ocBlocks, x_blocks: xBlocks, out_pad: outPad },
      ...{ has_bias: bias ? 1 : 0, has_scale: epilogue.scale ? 1 : 0, has_res: epilogue.residual ? 1 : 0, relu: epilogue.relu ? 1 : 0 },
    },
    buffers: { out, inp: x, packed, bias, scale: epilogue.scale, res: epilogue.residual },
    invocations: [hout * xBlocks, ocBlocks, batch],
    constants: { K: k },
  });
  return out;
}

/** The input gradient: a forward convolution of g with the flipped, transposed weights (not recorded). */
export function conv2dInputGrad(g: Tensor, w: Tensor, options: Conv2dOptions = {}): Tensor {
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [cout, cinG, k] = w.shape as number[];
  return g.gpu.scope(() => launchForward(g, packWeight(w, groups, cout / groups, cinG, k, true), cinG * groups, k, null, k - 1 - pad, groups, 'input grad'));
}

/** The weight gradient for input x and output gradient g (not recorded). */
export function conv2dWeightGrad(x: Tensor, g: Tensor, weightShape: readonly number[], options: Conv2dOptions = {}): Tensor {
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [batch, cin, h, wd] = x.shape as number[];
  const [cout, cinG, k] = weightShape;
  const [, , hout, wout] = g.shape as number[];
  // Lanes per block of output channels: a whole number of the largest subgroups, so that where the
  // adapter groups consecutive invocations, every subgroup works on one block and shares its values
  // (the kernel checks that it does).
  const [lanes] = x.gpu.kernels.info('conv2d.weight_grad').workgroupSize;
  const subgroup = x.gpu.features.subgroups ? x.gpu.adapter.info.subgroupMaxSize || lanes : 1;
  const key = `b${batch} c${cin}x${cout} g${groups} k${k} p${pad} ${h}x${wd}`;
  // Layers as wide as a workgroup launch the same in both: nothing to choose.
  const candidates = cinG >= lanes ? WEIGHT_GRAD_VARIANTS.slice(0, 1) : WEIGHT_GRAD_VARIANTS;
  const variant = options.variant ?? x.gpu.kernels.variant('conv2d.weight_grad', key, candidates, (name) => conv2dWeightGrad(x, g, weightShape, { ...options, variant: name }).dispose());
  if (!WEIGHT_GRAD_VARIANTS.includes(variant)) throw new Error(`conv2d weight gradient: no variant '${variant}' (${WEIGHT_GRAD_VARIANTS.join(', ')})`);
  const lanesPerBlock = cinG >= lanes || variant === 'wide' ? lanes : Math.min(lanes, Math.ceil(cinG / subgroup) * subgroup);
  const blocks = groups * Math.ceil(cout / groups / GRAD_OC);
  const out = Tensor.empty(x.gpu, weightShape);
  x.gpu.kernels.dispatch('conv2d.weight_grad', {
    uniforms: { batch, cin, h, w: wd, cout, hout, wout, groups, pad, lanes_per_block: lanesPerBlock },
    buffers: { out, inp: x, dout: g },
    // Wide blocks: x walks the input channels; narrow ones: one workgroup holds several blocks.
    invocations: lanesPerBlock >= lanes ? [cinG, blocks, 1] : [lanes, Math.ceil(blocks / Math.floor(lanes / lanesPerBlock)), 1],
    constants: { K: k },
  });
  return out;
}

function untracked(t: Tensor): Tensor {
  t.gpu.tape.untrack(t);
  return t;
}

export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [, cin, h, wd] = dims4('conv2d', x);
  if (w.shape.length !== 4 || w.shape[2] !== w.shape[3]) throw new Error(`conv2d: weight must be [Cout, Cin/G, K, K], got ${formatShape(w.shape)}`);
  const [cout, cinG, k] = w.shape as number[];
  if (k > KMAX) throw new Error(`conv2d: kernels up to ${KMAX}x${KMAX} are supported, got ${k}x${k}`);
  if (!Number.isInteger(groups) || groups < 1 || cin % groups || cout % groups) throw new Error(`conv2d: ${cin} -> ${cout} channels cannot be split into ${groups} groups`);
  if (cinG * groups !== cin) throw new Error(`conv2d: weight ${formatShape(w.shape)} expects ${cinG * groups} input channels, input ${formatShape(x.shape)} has ${cin}`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) throw new Error(`conv2d: bias ${formatShape(bias.shape)} must be [${cout}]`);
  if (!Number.isInteger(pad) || pad < 0 || pad > k - 1) throw new Error(`conv2d: padding ${pad} must be in [0, ${k - 1}]`);
  if (h + 2 * pad < k || wd + 2 * pad < k) throw new Error(`conv2d: input ${formatShape(x.shape)} is smaller than the ${k}x${k} kernel`);
  // Without gradients (inference) parameters do not change between calls: pack each weight once.
  const packed = () => packWeight(w, groups, cinG, cout / groups, k, false);
  const out = x.gpu.tape.gradEnabled
    ? x.gpu.scope(() => launchForward(x, packed(), cout, k, bias, pad, groups))
    : launchForward(x, x.gpu.derive(w, () => untracked(packed())), cout, k, bias, pad, groups);
  const inputs = bias ? [x, w, bias] : [x, w];
  return x.gpu.tape.record(
    'conv2d',
    inputs,
    out,
    (g, needs, into) => {
      const [batch, , hout, wout] = g.shape as number[];
      const dx = needs[0] ? conv2dInputGrad(g, w, options) : null;
      const dw = needs[1] ? conv2dWeightGrad(x, g, w.shape, options) : null;
      const db = bias && needs[2] ? channelReduce(g, { batch, channels: cout, inner: hout * wout, mode: ReduceMode.Sum, into: into[2] }) : null;
      return [dx, dw, db];
    },
    [x, w],
  );
}

/**
 * Inference-only convolution with an epilogue: `relu?(conv(x, w) * scale + shift + residual)`,
 * e.g. an eval-mode BatchNorm (see foldBatchNorm) and the ReLU and residual add after it, in one
 * pass. Not recorded: use it where no gradient is wanted.
 */
export function conv2dFused(x: Tensor, w: Tensor, shift: Tensor | null, options: Conv2dOptions & ConvEpilogue = {}): Tensor {
  if (x.gpu.tape.gradEnabled && [x, w, shift, options.scale, options.residual].some((t) => t?.requiresGrad)) {
    throw new Error('conv2dFused records no gradient: call it under noGrad');
  }
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [cout, cinG, k] = w.shape as number[];
  const packed = x.gpu.derive(w, () => untracked(packWeight(w, groups, cinG, cout / groups, k, false)));
  return launchForward(x, packed, cout, k, shift, pad, groups, 'fused', options);
}
