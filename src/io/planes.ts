/**
 * Interleaved (HWC) 8-bit images and planar (NCHW) float batches, pixels in [0, 255]: the one
 * conversion each way, used by upscaling, evaluation and the training sampler.
 */

/** Interleaved pixels: the first 3 of `channels` values per pixel are RGB. */
export interface Interleaved {
  data: ArrayLike<number>;
  width: number;
  channels: number;
}

/** A rectangle of an image, in pixels. */
export interface Window {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/**
 * Copies a window of an interleaved image into sample `sample` of a planar [B, 3, height, width]
 * batch. `from(y, x)` names the window pixel that output pixel (y, x) reads (default: the same
 * one): the sampler's flips and rotations.
 */
export function toPlanes(
  image: Interleaved,
  win: Window,
  out: Float32Array,
  sample = 0,
  from?: (y: number, x: number) => readonly [number, number],
): void {
  const { width: w, height: h } = win;
  const plane = h * w;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [sy, sx] = from ? from(y, x) : [y, x];
      const at = ((win.y0 + sy) * image.width + win.x0 + sx) * image.channels;
      for (let c = 0; c < 3; c++) out[(sample * 3 + c) * plane + y * w + x] = image.data[at + c];
    }
}

/** A model output value as a pixel byte: rounded and clamped to [0, 255]. */
export function toByte(v: number): number {
  return Math.min(255, Math.max(0, Math.round(v)));
}

/**
 * Writes sample `sample` of a planar [B, 3, height, width] batch into the RGB values of `out`
 * (interleaved, `channels` per pixel; other channels are left alone), as bytes.
 */
export function toPixels(
  planes: ArrayLike<number>,
  sample: number,
  width: number,
  height: number,
  out: Uint8Array,
  channels = 3,
): Uint8Array {
  const plane = width * height;
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < 3; c++) out[i * channels + c] = toByte(planes[(sample * 3 + c) * plane + i]);
  return out;
}
