/**
 * The sliding window of a convolution or a pooling: kernel, stride and zero padding per side,
 * validated, and the output size they give. Shared by conv2d and the pooling ops.
 */

/** Padding of each side, [top, bottom, left, right]; one number pads every side alike. */
export type Padding = number | readonly [number, number, number, number];

export interface Window {
  kernel: number;
  stride: number;
  /** [top, bottom, left, right]. */
  padding: readonly [number, number, number, number];
  hout: number;
  wout: number;
}

/**
 * TensorFlow's 'SAME' padding of one axis: [before, after] such that the output has
 * ceil(size / stride) positions; total = max((ceil(size/stride) - 1) * stride + kernel - size, 0),
 * before = floor(total / 2) (the extra cell goes after).
 */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  for (const [name, v] of [
    ['size', size],
    ['kernel', kernel],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`samePadding: ${name} ${v} must be a positive integer`);
  }
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** [top, bottom, left, right] from a Padding, each checked to be an integer in [0, kernel - 1]. */
export function paddingSides(
  op: string,
  padding: Padding | undefined,
  kernel: number,
): [number, number, number, number] {
  const sides: number[] =
    typeof padding === 'number' || padding === undefined ? new Array<number>(4).fill(padding ?? 0) : [...padding];
  if (sides.length !== 4)
    throw new Error(`${op}: padding must be a number or [top, bottom, left, right], got [${sides.join(', ')}]`);
  for (const p of sides) {
    if (!Number.isInteger(p) || p < 0 || p >= kernel)
      throw new Error(`${op}: padding ${p} must be an integer in [0, ${kernel - 1}] for a ${kernel}x${kernel} kernel`);
  }
  return sides as [number, number, number, number];
}

/**
 * The window of a `kernel` x `kernel` op over an h x w map: output size
 * floor((h + top + bottom - kernel) / stride) + 1 (and alike for the width), at least 1.
 */
export function slidingWindow(
  op: string,
  [h, w]: readonly [number, number],
  kernel: number,
  stride: number | undefined,
  padding: Padding | undefined,
): Window {
  if (!Number.isInteger(kernel) || kernel < 1)
    throw new Error(`${op}: kernel size ${kernel} must be a positive integer`);
  const s = stride ?? 1;
  if (!Number.isInteger(s) || s < 1) throw new Error(`${op}: stride ${s} must be a positive integer`);
  const sides = paddingSides(op, padding, kernel);
  const [top, bottom, left, right] = sides;
  if (h + top + bottom < kernel || w + left + right < kernel)
    throw new Error(
      `${op}: a ${h}x${w} map padded by [${sides.join(', ')}] is smaller than the ${kernel}x${kernel} kernel`,
    );
  return {
    kernel,
    stride: s,
    padding: sides,
    hout: Math.floor((h + top + bottom - kernel) / s) + 1,
    wout: Math.floor((w + left + right - kernel) / s) + 1,
  };
}
