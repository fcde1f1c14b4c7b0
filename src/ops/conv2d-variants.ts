/**
 * Variants of the convolution kernels (shaders/conv2d.wgsl, shaders/conv2d_weight.wgsl): the same
 * result from different tilings, workgroup sizes and subgroup use, each built as its own shader
 * file (the constants rewritten, `subgroups` optionally off) with its own cached pipelines. The
 * first candidate of a role is the default where nothing is tuned; it is the shader file as
 * written, so `prepare` compiles it ahead of the first step.
 *
 * No variant wins everywhere: on lavapipe the defaults win most forwards, smaller tiles some
 * batch-1 maps and split-K some weight gradients, and the staged and plain-load variants lose (a
 * CPU adapter pays for barriers; the subgroup broadcast pays off) but are candidates for GPUs. So
 * the tuner picks per adapter and shape. The measurements: docs/performance.md.
 */
import type { Engine } from '../tensor.js';
import { platform } from '../platform/index.js';
import type { Padding } from './window.js';

export type ConvRole = 'forward' | 'inputGrad' | 'weightGrad';

export interface Conv2dOptions {
  /** Zero padding, the same on every side or [top, bottom, left, right], each in [0, K-1] (default 0: 'valid'). */
  padding?: Padding;
  /** A positive integer (default 1): output (y, x) reads the input from (y * stride - top, x * stride - left). */
  stride?: number;
  groups?: number;
  /** A kernel variant by name (convVariants lists them per role); default: the one tuned for this adapter and shape. */
  variant?: string;
}

/**
 * A forward (and input-gradient) variant: TO output channels x TX columns per invocation, WG invocations per workgroup.
 */
export interface ForwardVariant {
  name: string;
  channels: number;
  columns: number;
  workgroup: number;
  /** Weights shared through subgroup shuffles (else loaded per invocation). */
  subgroups: boolean;
  /** Weights staged in workgroup memory between barriers (for GPUs). */
  staged: boolean;
}

/** A weight-gradient variant: TW columns per run, WG invocations per workgroup, split-K. */
export interface WeightGradVariant {
  name: string;
  columns: number;
  workgroup: number;
  subgroups: boolean;
  /** Every block of 8 output channels gets whole workgroups (else narrow layers put several blocks in one). */
  wide: boolean;
  /** Split-K: cut the (batch, row) sum into chunks until there are this many invocations (0: never). */
  minInvocations: number;
}

export type ConvVariant = ForwardVariant | WeightGradVariant;

/** The adapter's largest subgroup where the engine uses subgroups, else 0. */
function subgroupSize(gpu: Engine): number {
  return gpu.features.subgroups ? gpu.adapter.info.subgroupMaxSize || 64 : 0;
}

// [channels, columns, workgroup, staged]: the candidates after the default, which is the shader's own
// constants (TO, TX, WG, STAGE). Not offered: 8-invocation workgroups, and 12- and 16-column tiles
// (the tile's loops no longer unroll), slower everywhere measured (docs/performance.md).
const FORWARD_TILES: readonly [number, number, number, boolean][] = [
  [16, 4, 64, false],
  [16, 8, 16, false],
  [8, 8, 16, false],
  [16, 8, 64, true],
];

// [columns, workgroup, wide, minInvocations]: the candidates after the default, which is the
// shader's own constants (TW, WG), narrow blocks and no split-K. Not offered: 8-column runs (the
// 8 x TW output gradient no longer fits in registers beside the K*K accumulators; slower everywhere
// measured, docs/performance.md).
const WEIGHT_GRAD_TILES: readonly [number, number, boolean, number][] = [
  [4, 64, true, 0],
  [4, 64, false, 2048],
  [4, 16, false, 2048],
  [4, 64, false, 32768],
];

/**
 * The candidates for a role on this adapter, the default first. Subgroup paths run in workgroups
 * of whole subgroups only (WG >= the largest subgroup); where the adapter has subgroups, the
 * default tile also comes without them.
 */
export function convVariants(gpu: Engine, role: ConvRole): readonly ConvVariant[] {
  // Every launch asks (twice): the lists depend only on the engine's adapter and features, so they are built once per
  // engine.
  const lists = variantLists.get(gpu) ?? new Map<ConvRole, readonly ConvVariant[]>();
  variantLists.set(gpu, lists);
  let list = lists.get(role);
  if (!list) lists.set(role, (list = buildVariants(gpu, role)));
  return list;
}

const variantLists = new WeakMap<Engine, Map<ConvRole, readonly ConvVariant[]>>();

function buildVariants(gpu: Engine, role: ConvRole): ConvVariant[] {
  const lanes = subgroupSize(gpu);
  // The default tile is the shader as written (so `prepare` compiles it ahead of the first step).
  const own = (kernel: string, name: string) => gpu.kernels.constant(kernel, name);
  if (role === 'weightGrad') {
    const shader = (name: string) => own('conv2d_weight.weight_grad', name);
    const tiles = [[shader('TW'), shader('WG'), false, 0] as const, ...WEIGHT_GRAD_TILES];
    return tiles.map(([columns, workgroup, wide, minInvocations]) => ({
      name: `t${columns}w${workgroup}${wide ? '-wide' : ''}${minInvocations ? `-split${minInvocations}` : ''}`,
      ...{ columns, workgroup, wide, minInvocations, subgroups: lanes > 0 },
    }));
  }
  const shader = (name: string) => own('conv2d.forward', name);
  const tiles = [[shader('TO'), shader('TX'), shader('WG'), shader('STAGE') === 1] as const, ...FORWARD_TILES];
  const variants: ForwardVariant[] = tiles.map(([channels, columns, workgroup, staged]) => ({
    name: `o${channels}x${columns}w${workgroup}${staged ? '-staged' : ''}`,
    ...{ channels, columns, workgroup, staged, subgroups: !staged && lanes > 0 && workgroup >= lanes },
  }));
  if (lanes) variants.push({ ...variants[0], name: `${variants[0].name}-plain`, subgroups: false });
  return variants;
}

/** The variant named `name` (or the default) of a role; unknown names are errors that list the valid ones. */
export function findVariant<V extends ConvVariant>(gpu: Engine, role: ConvRole, name: string | undefined): V {
  const variants = convVariants(gpu, role) as readonly V[];
  const found = name === undefined ? variants[0] : variants.find((v) => v.name === name);
  if (!found)
    throw new Error(`conv2d ${role}: no variant '${name}' on this adapter (${variants.map((v) => v.name).join(', ')})`);
  return found;
}

/** The kernel of a forward (and input-gradient) variant. */
export function forwardKernel(gpu: Engine, v: ForwardVariant): string {
  return variantKernel(
    gpu,
    'conv2d',
    'forward',
    { TX: v.columns, TO: v.channels, WG: v.workgroup, STAGE: v.staged },
    v.subgroups,
  );
}

/** The kernel of a weight-gradient variant. */
export function weightGradKernel(gpu: Engine, v: WeightGradVariant): string {
  return variantKernel(gpu, 'conv2d_weight', 'weight_grad', { TW: v.columns, WG: v.workgroup }, v.subgroups);
}

/** Defines every variant's shader file (nothing compiles), so that `prepare` finds the tuned ones. */
export function defineConvVariants(gpu: Engine): void {
  for (const v of convVariants(gpu, 'forward') as ForwardVariant[]) forwardKernel(gpu, v);
  for (const v of convVariants(gpu, 'weightGrad') as WeightGradVariant[]) weightGradKernel(gpu, v);
}

/** Per kernel registry: the shader file built for each variant key. */
const builtFiles = new WeakMap<object, Map<string, string>>();

/**
 * The kernel name of `file.entry` built with the given constants (each replacing the shader's
 * `const NAME: type = ...;` line) and subgroup use: the file itself where they are its own, else a
 * variant file defined once per registry (e.g. `conv2d@16_16_64_0.forward`).
 */
function variantKernel(
  gpu: Engine,
  file: string,
  entry: string,
  constants: Record<string, number | boolean>,
  subgroups: boolean,
): string {
  const key = `${file}@${Object.values(constants).map(Number).join('_')}${subgroups ? '' : '_plain'}`;
  const built = builtFiles.get(gpu.kernels) ?? new Map<string, string>();
  builtFiles.set(gpu.kernels, built);
  let variantFile = built.get(key);
  if (variantFile === undefined) {
    variantFile = defineVariant(gpu, file, key, constants, subgroups);
    built.set(key, variantFile);
  }
  return `${variantFile}.${entry}`;
}

function defineVariant(
  gpu: Engine,
  file: string,
  variantFile: string,
  constants: Record<string, number | boolean>,
  subgroups: boolean,
): string {
  const source = platform.readShader(file);
  if (source === null) throw new Error(`no shaders/${file}.wgsl`);
  let code = source;
  for (const [name, value] of Object.entries(constants)) {
    const line = new RegExp(`^const ${name}: (u32|bool) = [^;]+;`, 'm');
    if (!line.test(code)) throw new Error(`shaders/${file}.wgsl declares no constant ${name}`);
    code = code.replace(
      line,
      (_, type: string) => `const ${name}: ${type} = ${typeof value === 'boolean' ? value : `${value}u`};`,
    );
  }
  const flags: Record<string, boolean> = subgroups === gpu.features.subgroups ? {} : { subgroups };
  if (code === source && !Object.keys(flags).length) return file;
  gpu.kernels.define(variantFile, code, flags);
  return variantFile;
}

/** The window of a launch: stride, the input's dilation (input gradients of strided convs) and padding per side. */
export interface LaunchWindow {
  stride: number;
  /** Default 1. */
  dilation?: number;
  /** [top, bottom, left, right]. */
  padding: readonly [number, number, number, number];
}

/**
 * The shapes of a convolution, as a tuning key: `b10 c64x256 g4 k3 p1 32x32`, with the padding per
 * side, stride and dilation spelled out (`p0,1,0,1 s2 d1`) where they are not 1 and symmetric.
 */
export function shapeKey(
  batch: number,
  cin: number,
  cout: number,
  groups: number,
  k: number,
  { stride, dilation = 1, padding }: LaunchWindow,
  h: number,
  w: number,
): string {
  const plain = stride === 1 && dilation === 1 && padding.every((p) => p === padding[0]);
  const geometry = plain ? `p${padding[0]}` : `p${padding.join(',')} s${stride} d${dilation}`;
  return `b${batch} c${cin}x${cout} g${groups} k${k} ${geometry} ${h}x${w}`;
}
