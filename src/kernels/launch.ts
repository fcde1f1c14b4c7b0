/** The launch contract: what a dispatch binds, and how its work becomes a workgroup grid. */
import type { Constants, UniformValues } from './reflect.js';

/** A byte range of a buffer, as bound to a storage binding. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/**
 * Anything that can be bound: a raw range or an object (a Tensor) that exposes one, and that is
 * told when a dispatch binds it writable (so what was derived from its old contents is remade).
 */
export type Bindable = BufferRange | { readonly range: BufferRange; markWritten?(): void };

export type Grid = readonly [number, number, number];

/**
 * One launch. The work is given as `invocations` (the usual case: the registry divides by the
 * entry point's declared `@workgroup_size`) or as `groups` (kernels whose workgroup shares one
 * item, e.g. a channel's reduction). A count is 1-D and folded into (x, y) past the adapter's
 * maxComputeWorkgroupsPerDimension (kernels rebuild the flat index from `num_workgroups`); a grid
 * is 3-D and not folded.
 */
export interface DispatchArgs {
  /** Uniform struct members by name, every member of the kernel's struct. */
  uniforms?: UniformValues;
  /**
   * Storage bindings by name. A read-only binding may be left out (null or absent) when this call
   * does not read it (a flag in the uniforms says so): the registry binds a small placeholder.
   */
  buffers: Record<string, Bindable | null | undefined>;
  /**
   * Writable bindings this call does not write (a flag in the uniforms says so): each gets a small
   * scratch buffer of its own (a writable binding may not alias another).
   */
  unwritten?: readonly string[];
  /** Invocations: a count or an [x, y, z] grid, divided by the entry point's `@workgroup_size`. */
  invocations?: number | Grid;
  /** Or workgroups directly, for kernels whose workgroup shares one item: a count or a grid. */
  groups?: number | Grid;
  constants?: Constants;
  /** Shown after the kernel name in profiles and error messages (e.g. 'input grad'). */
  tag?: string;
}

/** Splits a workgroup count over x and y when it passes the per-dimension limit. */
export function foldGroups(count: number, maxPerDim: number): [number, number, number] {
  if (!Number.isInteger(count) || count < 0) throw new Error(`invalid workgroup count ${count}`);
  if (count <= maxPerDim) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) throw new Error(`${count} workgroups exceed ${maxPerDim}^2`);
  return [Math.ceil(count / y), y, 1];
}

/** Workgroups for a launch of `args` on an entry point of `workgroupSize` (see DispatchArgs). */
export function launchGroups(
  kernel: string,
  workgroupSize: readonly [number, number, number],
  args: Pick<DispatchArgs, 'invocations' | 'groups'>,
  maxPerDim: number,
): [number, number, number] {
  const { invocations, groups } = args;
  if ((invocations === undefined) === (groups === undefined))
    throw new Error(`kernel ${kernel}: give either invocations or groups`);
  const work = invocations ?? groups!;
  const per = invocations === undefined ? [1, 1, 1] : workgroupSize;
  if (typeof work === 'number') return foldGroups(Math.ceil(work / (per[0] * per[1] * per[2])), maxPerDim);
  const grid = work.map((n, i) => Math.ceil(n / per[i])) as [number, number, number];
  if (grid.some((n) => !Number.isInteger(n) || n < 0 || n > maxPerDim))
    throw new Error(
      `kernel ${kernel}: workgroup grid [${grid.join(', ')}] is invalid or exceeds ${maxPerDim} per dimension`,
    );
  return grid;
}

export function rangeOf(b: Bindable): BufferRange {
  return 'range' in b ? b.range : b;
}
