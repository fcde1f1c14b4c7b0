/**
 * conv2d's shapes, validated: input, weight, groups, stride and padding against each other, and
 * an output gradient against the forward's output (conv2d, conv2dInputGrad and conv2dWeightGrad).
 */
import { formatShape, type Shape } from '../shape.js';
import type { Engine } from '../tensor.js';
import { slidingWindow, type Window } from './window.js';
import type { Conv2dOptions, LaunchWindow } from './conv2d-variants.js';

export interface ConvShape {
  batch: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  /** Input channels per group (the weight's second dimension). */
  cinG: number;
  groups: number;
  window: Window;
}

/** The shapes of `op` on an input `x` [B, Cin, H, W] and a weight [Cout, Cin/G, K, K] with `options`. */
export function convShape(gpu: Engine, op: string, x: Shape, weight: Shape, options: Conv2dOptions): ConvShape {
  if (x.length !== 4) throw new Error(`${op}: expected an NCHW input, got ${formatShape(x)}`);
  const [batch, cin, h, w] = x;
  if (weight.length !== 4 || weight[2] !== weight[3])
    throw new Error(`${op}: weight must be [Cout, Cin/G, K, K], got ${formatShape(weight)}`);
  const [cout, cinG, k] = weight;
  const kmax = gpu.kernels.constant('conv2d.forward', 'KMAX');
  if (k > kmax) throw new Error(`${op}: kernels up to ${kmax}x${kmax} are supported, got ${k}x${k}`);
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1 || cin % groups || cout % groups)
    throw new Error(`${op}: ${cin} -> ${cout} channels cannot be split into ${groups} groups`);
  if (cinG * groups !== cin)
    throw new Error(
      `${op}: weight ${formatShape(weight)} expects ${cinG * groups} input channels, ` +
        `input ${formatShape(x)} has ${cin}`,
    );
  const window = slidingWindow(op, [h, w], k, options.stride, options.padding);
  return { batch, cin, h, w, cout, cinG, groups, window };
}

/** The forward's output shape [B, Cout, Hout, Wout]. */
export function outputShape(s: ConvShape): [number, number, number, number] {
  return [s.batch, s.cout, s.window.hout, s.window.wout];
}

/** Throws unless `g` has the forward's output shape. */
export function checkOutputGrad(op: string, g: Shape, s: ConvShape): void {
  const want = outputShape(s);
  if (g.length !== 4 || want.some((d, i) => d !== g[i]))
    throw new Error(
      `${op}: output gradient ${formatShape(g)} does not match the forward's output ${formatShape(want)} ` +
        `(input [${s.batch}, ${s.cin}, ${s.h}, ${s.w}], stride ${s.window.stride}, ` +
        `padding [${s.window.padding.join(', ')}])`,
    );
}

/**
 * The input size of the forward that gave an output of `hout` x `wout`: the smallest one (exact
 * for stride 1; with a stride, several inputs give one output size, so the caller can say which).
 */
export function smallestInput(hout: number, wout: number, k: number, options: Conv2dOptions): [number, number] {
  const stride = options.stride ?? 1;
  const p = options.padding ?? 0;
  const [top, bottom, left, right] = typeof p === 'number' ? [p, p, p, p] : p;
  return [(hout - 1) * stride + k - top - bottom, (wout - 1) * stride + k - left - right];
}

/**
 * What both convolution kernels (forward and weight gradient) take of a launch's geometry: the
 * input [batch, cin, h, w], the output's channels and size, groups, the top and left padding and
 * the stride as uniforms, and the kernel size K as an override; a strided (or dilated) launch gets a pipeline of
 * its own (STRIDED), so stride 1 runs the plain code.
 */
export function convGeometry(
  [batch, cin, h, w]: readonly number[],
  [cout, hout, wout]: readonly number[],
  groups: number,
  k: number,
  window: LaunchWindow,
): { uniforms: Record<string, number>; constants: Record<string, number> } {
  const { stride, dilation = 1, padding } = window;
  const uniforms = { batch, cin, h, w, cout, hout, wout, groups, pad_y: padding[0], pad_x: padding[2], stride };
  return { uniforms, constants: stride !== 1 || dilation !== 1 ? { K: k, STRIDED: 1 } : { K: k } };
}
