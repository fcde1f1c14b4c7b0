/**
 * conv2d: NCHW, any stride, zero padding per side, groups (depthwise included), optional bias. Forward and backward
 * (shaders/conv2d.wgsl; the weight gradient in conv2d-weight-grad.ts), each in the kernel variant
 * the tuner picks for the adapter and shapes (conv2d-variants.ts) or `options.variant`.
 */
import { Tensor, formatShape, sameShape, type Engine } from '../tensor.js';
import { channelReduce, ReduceMode, type MomentPartials } from './reduce.js';
import {
  convVariants,
  findVariant,
  forwardKernel,
  shapeKey,
  type Conv2dOptions,
  type ForwardVariant,
  type LaunchWindow,
} from './conv2d-variants.js';
import { conv2dWeightGrad } from './conv2d-weight-grad.js';
import {
  checkOutputGrad,
  convGeometry,
  convShape,
  outputShape,
  smallestInput,
  type ConvShape,
} from './conv2d-shape.js';

export { conv2dWeightGrad };

/** Packed output channels are padded to a multiple of the widest output-channel tile of any variant. */
function padChannels(gpu: Engine, n: number): number {
  const widest = Math.max(...(convVariants(gpu, 'forward') as ForwardVariant[]).map((v) => v.channels));
  return Math.ceil(n / widest) * widest;
}

interface PackedWeights {
  /** For the forward kernel: [G][in_g][K*K][out_g padded to 16]. */
  forward: Tensor | null;
  /** For the input gradient (the forward kernel on g): the same, transposed (in_g and out_g swapped) and flipped. */
  transposed: Tensor | null;
}

/** Packs a weight [Cout, Cin/G, K, K] for the kernels that want it, in one dispatch. */
function packWeights(w: Tensor, groups: number, want: { forward: boolean; transposed: boolean }): PackedWeights {
  const [cout, inG, k] = w.shape as number[];
  const outG = cout / groups;
  const rows = want.forward ? groups * inG * k * k : 0;
  const tRows = want.transposed ? groups * outG * k * k : 0;
  const forward = rows ? Tensor.empty(w.gpu, [rows * padChannels(w.gpu, outG)]) : null;
  const transposed = tRows ? Tensor.empty(w.gpu, [tRows * padChannels(w.gpu, inG)]) : null;
  w.gpu.kernels.dispatch('conv2d.pack_weight', {
    uniforms: {
      in_g: inG,
      out_g: outG,
      out_pad: padChannels(w.gpu, outG),
      rows,
      t_out_pad: padChannels(w.gpu, inG),
      t_rows: tRows,
    },
    buffers: { out: forward, packed_t: transposed, w_src: w },
    unwritten: [...(forward ? [] : ['out']), ...(transposed ? [] : ['packed_t'])],
    invocations: Math.max(rows, tRows),
    constants: { K: k },
  });
  return { forward, transposed };
}

/** What the forward kernel applies before storing: `relu?(acc * scale + bias + residual)`. */
export interface ConvEpilogue {
  scale?: Tensor;
  residual?: Tensor;
  relu?: boolean;
}

/**
 * Per output channel, the sums of the output in pieces the forward kernel wrote as it stored them:
 * partials[o * batch * parts + b * parts + q] for q < parts, the pieces of sample b.
 */
export interface ChannelSums {
  partials: Tensor;
  shape: readonly [number, number, number, number];
  parts: number;
}

type FusedOptions = Conv2dOptions & ConvEpilogue;

/** What the forward kernel computes, beyond its input and packed weights. */
interface ForwardLaunch {
  cout: number;
  k: number;
  window: LaunchWindow;
  groups: number;
  bias?: Tensor | null;
  /**
   * 'inputGrad': the input gradient, the forward on flipped weights (its shape key, that of the
   * forward it runs, shares the forward's tuned choice).
   */
  role: 'forward' | 'inputGrad';
  variant?: string;
  tag?: string;
  epilogue?: ConvEpilogue;
  /** Add the result into this tensor (a partial input gradient) and return it, instead of a new one. */
  into?: Tensor | null;
  /** Also write the output's per-channel moments in pieces (for the BatchNorm that follows). */
  moments?: boolean;
  /** Also write the output's per-channel sums in pieces (for the split attention that follows). */
  sums?: boolean;
}

interface ForwardResult {
  out: Tensor;
  moments: MomentPartials | null;
  sums: ChannelSums | null;
}

function launchForward(x: Tensor, packed: Tensor, launch: ForwardLaunch): ForwardResult {
  const { cout, k, window, groups, bias = null, role, tag = '', epilogue = {}, into = null } = launch;
  const gpu = x.gpu;
  const [batch, cin, h, wd] = x.shape as number[];
  const name =
    launch.variant ??
    gpu.kernels.variant(
      'conv2d.forward',
      shapeKey(batch, cin, cout, groups, k, window, h, wd),
      convVariants(gpu, role).map((v) => v.name),
      (variant) =>
        launchForward(x, packed, { ...launch, variant, into: null, moments: false, sums: false }).out.dispose(),
    );
  const v = findVariant<ForwardVariant>(gpu, role, name);
  const kernel = forwardKernel(gpu, v);
  // The output size on the input dilated by `dilation` (its size (n - 1) * dilation + 1).
  const { stride, dilation = 1, padding } = window;
  const [top, bottom, left, right] = padding;
  const hout = Math.floor(((h - 1) * dilation + 1 + top + bottom - k) / stride) + 1;
  const wout = Math.floor(((wd - 1) * dilation + 1 + left + right - k) / stride) + 1;
  if (into && (into.shape.length !== 4 || [batch, cout, hout, wout].some((d, i) => d !== into.shape[i])))
    throw new Error(
      `conv2d: cannot add a [${batch}, ${cout}, ${hout}, ${wout}] result into ${formatShape(into.shape)}`,
    );
  const out = into ?? Tensor.empty(gpu, [batch, cout, hout, wout]);
  const geometry = convGeometry(x.shape, [cout, hout, wout], groups, k, window);
  const outPad = padChannels(gpu, cout / groups);
  const ocBlocks = groups * Math.ceil(cout / groups / v.channels);
  const xBlocks = Math.ceil(wout / v.columns);
  const moments = launch.moments
    ? {
        partials: Tensor.empty(gpu, [cout * batch * hout * xBlocks * 2]),
        shape: [batch, cout, hout, wout] as const,
        columns: v.columns,
      }
    : null;
  const sums = launch.sums
    ? {
        partials: Tensor.empty(gpu, [cout * batch * hout * xBlocks]),
        shape: [batch, cout, hout, wout] as const,
        parts: hout * xBlocks,
      }
    : null;
  gpu.kernels.dispatch(kernel, {
    tag,
    uniforms: {
      ...{
        ...geometry.uniforms,
        dilation,
        oc_blocks: ocBlocks,
        x_blocks: xBlocks,
        out_pad: outPad,
      },
      ...{
        has_bias: bias ? 1 : 0,
        has_scale: epilogue.scale ? 1 : 0,
        has_res: epilogue.residual ? 1 : 0,
        relu: epilogue.relu ? 1 : 0,
        accumulate: into ? 1 : 0,
        moments: moments ? 1 : 0,
        sums: sums ? 1 : 0,
      },
    },
    buffers: {
      out,
      inp: x,
      packed,
      bias,
      scale: epilogue.scale,
      res: epilogue.residual,
      moments_out: moments?.partials ?? sums?.partials,
    },
    unwritten: moments || sums ? [] : ['moments_out'],
    invocations: [hout * xBlocks, ocBlocks, batch],
    constants: geometry.constants,
  });
  return { out, moments, sums };
}

/** conv2dInputGrad's options: the forward's, and the forward's input size where a stride leaves it open. */
export interface Conv2dInputGradOptions extends Conv2dOptions {
  /** [H, W] of the forward's input (default: `into`'s, else the smallest input that gives g's size). */
  inputSize?: readonly [number, number];
}

/**
 * The input gradient: a forward convolution of g (dilated by the stride) with the flipped,
 * transposed weights (not recorded); with `into`, added into it (the input's partial gradient)
 * and `into` returned. g must have the forward's output shape.
 */
export function conv2dInputGrad(
  g: Tensor,
  w: Tensor,
  options: Conv2dInputGradOptions = {},
  into: Tensor | null = null,
): Tensor {
  if (g.shape.length !== 4)
    throw new Error(`conv2dInputGrad: expected an NCHW output gradient, got ${formatShape(g.shape)}`);
  const [batch, , hout, wout] = g.shape;
  const [h, wd] =
    options.inputSize ??
    (into?.shape.length === 4 ? [into.shape[2], into.shape[3]] : smallestInput(hout, wout, w.shape[2], options));
  const cin = (w.shape[1] ?? 0) * (options.groups ?? 1);
  const shape = convShape(g.gpu, 'conv2dInputGrad', [batch, cin, h, wd], w.shape, options);
  checkOutputGrad('conv2dInputGrad', g.shape, shape);
  return inputGrad(g, w, null, shape, options.variant, into);
}

/**
 * The input gradient of a validated shape, with w's transposed packing when the forward already
 * made it: the forward kernel at stride 1 on g dilated by the stride, padded by K-1 minus the
 * forward's (its last rows and columns by what makes the output the forward's input size).
 */
function inputGrad(
  g: Tensor,
  w: Tensor,
  packedTransposed: Tensor | null,
  shape: ConvShape,
  variant: string | undefined,
  into: Tensor | null,
): Tensor {
  const { groups, window, h, w: wd } = shape;
  const { kernel: k, stride, padding, hout, wout } = window;
  const [top, , left] = padding;
  // Padding after the dilated g ((hout - 1) * stride + 1 rows) so that the output has h rows.
  const bottom = h - 1 - (hout - 1) * stride + top;
  const right = wd - 1 - (wout - 1) * stride + left;
  const launch: ForwardLaunch = {
    cout: shape.cin,
    k,
    window: { stride: 1, dilation: stride, padding: [k - 1 - top, bottom, k - 1 - left, right] },
    groups,
    role: 'inputGrad',
    variant,
    tag: 'input grad',
    into,
  };
  return g.gpu.scope(
    () =>
      launchForward(
        g,
        packedTransposed ?? packWeights(w, groups, { forward: false, transposed: true }).transposed!,
        launch,
      ).out,
  );
}

/** Without gradients (inference) parameters do not change between calls: each weight is packed once. */
function inferencePacking(w: Tensor, groups: number): Tensor {
  return w.gpu.derive([w], `conv2d weights packed for ${groups} groups`, () => {
    const packed = packWeights(w, groups, { forward: true, transposed: false }).forward!;
    w.gpu.tape.untrack(packed);
    return packed;
  });
}

export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  return convolve(x, w, bias, options, false).out;
}

/**
 * conv2d, and its output's per-channel moments in pieces from the same kernel, for a training-mode
 * BatchNorm after it (batchNorm2d's `moments`): it then need not read the output to find them.
 */
export function conv2dWithMoments(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null = null,
  options: Conv2dOptions = {},
): { out: Tensor; moments: MomentPartials } {
  const { out, moments } = convolve(x, w, bias, options, true);
  return { out, moments: moments! };
}

function convolve(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  options: Conv2dOptions,
  withMoments: boolean,
): ForwardResult {
  const shape = convShape(x.gpu, 'conv2d', x.shape, w.shape, options);
  const { cout, groups, window } = shape;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout))
    throw new Error(`conv2d: bias ${formatShape(bias.shape)} must be [${cout}]`);
  const launch: ForwardLaunch = {
    cout,
    k: window.kernel,
    window,
    groups,
    bias,
    role: 'forward',
    variant: options.variant,
    moments: withMoments,
  };
  if (!x.gpu.tape.gradEnabled) {
    return launchForward(x, inferencePacking(w, groups), launch);
  }
  // In training the weights change every step: pack them here, and for the input gradient too
  // when there will be one (one dispatch for both), which the backward gets from the tape.
  const packs = packWeights(w, groups, { forward: true, transposed: x.requiresGrad });
  const { out, moments } = launchForward(x, packs.forward!, launch);
  packs.forward!.dispose();
  // The backward picks its own variants (options.variant names a forward one).
  const backward = { padding: window.padding, stride: window.stride, groups };
  const inputs = bias ? [x, w, bias] : [x, w];
  const result = x.gpu.tape.record(
    'conv2d',
    inputs,
    out,
    (g, needs, into) => {
      const [batch, , hout, wout] = g.shape as number[];
      const dx = needs[0] ? inputGrad(g, w, packs.transposed, shape, undefined, into[0]) : null;
      const dw = needs[1] ? conv2dWeightGrad(x, g, w.shape, backward, into[1]) : null;
      const db =
        bias && needs[2]
          ? channelReduce(g, { batch, channels: cout, inner: hout * wout, mode: ReduceMode.Sum, into: into[2] })
          : null;
      return [dx, dw, db];
    },
    packs.transposed ? [x, w, packs.transposed] : [x, w],
  );
  // The tape holds its own reference to the transposed packing (none if nothing is recorded).
  packs.transposed?.dispose();
  return { out: result, moments, sums: null };
}

/**
 * Inference-only convolution with an epilogue: `relu?(conv(x, w) * scale + shift + residual)`,
 * e.g. an eval-mode BatchNorm (see foldBatchNorm) and the ReLU and residual add after it, in one
 * pass. Not recorded: use it where no gradient is wanted.
 */
export function conv2dFused(x: Tensor, w: Tensor, shift: Tensor | null, options: FusedOptions = {}): Tensor {
  return fusedForward('conv2dFused', x, w, shift, options, false).out;
}

/**
 * conv2dFused, and its output's per-channel sums in pieces from the same kernel, for the split
 * attention that pools it next (the pooling then need not read the output).
 */
export function conv2dFusedWithSums(x: Tensor, w: Tensor, shift: Tensor | null, options: FusedOptions = {}) {
  const { out, sums } = fusedForward('conv2dFusedWithSums', x, w, shift, options, true);
  return { out, sums: sums as ChannelSums };
}

function fusedForward(
  op: string,
  x: Tensor,
  w: Tensor,
  shift: Tensor | null,
  options: FusedOptions,
  withSums: boolean,
): ForwardResult {
  if (x.gpu.tape.gradEnabled && [x, w, shift, options.scale, options.residual].some((t) => t?.requiresGrad)) {
    throw new Error(`${op} records no gradient: call it under noGrad`);
  }
  const shape = convShape(x.gpu, op, x.shape, w.shape, options);
  const { cout, groups, window } = shape;
  for (const [what, t] of [
    ['shift', shift],
    ['scale', options.scale],
  ] as const) {
    if (t && (t.shape.length !== 1 || t.shape[0] !== cout))
      throw new Error(`${op}: ${what} ${formatShape(t.shape)} must be [${cout}], one per output channel`);
  }
  const out = outputShape(shape);
  if (options.residual && !sameShape(options.residual.shape, out))
    throw new Error(
      `${op}: residual ${formatShape(options.residual.shape)} must have the output's shape ${formatShape(out)}`,
    );
  return launchForward(x, inferencePacking(w, groups), {
    cout,
    k: window.kernel,
    window,
    groups,
    bias: shift,
    role: 'forward',
    variant: options.variant,
    tag: 'fused',
    epilogue: options,
    sums: withSums,
  });
}
