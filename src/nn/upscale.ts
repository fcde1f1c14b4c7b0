/**
 * Inference on whole images: LR RGB(A) in, x`scale` RGB(A) out.
 *
 * The LR image is nearest-upsampled on the GPU (exactly what SISN is trained on) and run in eval
 * mode. Images whose activations would pass the adapter's per-binding limit (or `maxTile`) are cut
 * into overlapping LR tiles; each tile's output is blended into the result with weights that ramp
 * linearly across the overlap, so tile borders leave no seams. (Tiles are not bit-identical to one
 * pass: split attention pools over the whole tile.)
 */
import { Tensor, type Engine } from '../tensor.js';
import { upsampleNearest } from '../ops/index.js';
import type { RgbImage } from '../io/image.js';
import { toPlanes, toPixels } from '../io/planes.js';

/** What inference uses of a super-resolution model (SISN). */
export interface SuperResolver {
  readonly gpu: Engine;
  readonly config: { readonly scale: number; readonly channels: number };
  training: boolean;
  /** The network on a nearest-upsampled LR batch [B, 3, H, W]. */
  forward(input: Tensor): Tensor;
}

export interface UpscaleOptions {
  /** Largest LR tile side; default: what the adapter's binding limit and a 1 GiB activation budget allow. */
  maxTile?: number;
  /** LR pixels shared by neighbouring tiles (default 12). */
  overlap?: number;
  /** Called with (0, total) before the first tile, then after each tile with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Largest LR tile side so the biggest activation (C * (T*s)^2 floats, tail and last conv) fits. */
export function defaultTileSize(model: SuperResolver): number {
  const { channels, scale } = model.config;
  const limit = Math.min(model.gpu.limits.maxStorageBufferBindingSize, 1 << 30) / 4;
  return Math.max(16, Math.floor(Math.sqrt(limit / (channels * scale * scale * 4))));
}

function tileStarts(length: number, tile: number, overlap: number): number[] {
  if (length <= tile) return [0];
  const step = tile - overlap;
  const starts: number[] = [];
  for (let s = 0; s + tile < length; s += step) starts.push(s);
  starts.push(length - tile);
  return starts;
}

/** Weight of position i in a tile of n pixels: ramps over `overlap` at borders shared with a neighbour. */
function ramp(i: number, n: number, overlap: number, first: boolean, last: boolean): number {
  let w = 1;
  if (!first && i < overlap) w = Math.min(w, (i + 0.5) / overlap);
  if (!last && n - 1 - i < overlap) w = Math.min(w, (n - 1 - i + 0.5) / overlap);
  return w;
}

/**
 * The one inference call: an LR batch [batch, 3, h, w] (planar, [0, 255]) nearest-upsampled and run
 * through the model without gradients; returns the [batch, 3, h*s, w*s] output values.
 */
export async function superResolve(
  model: SuperResolver,
  planes: Float32Array,
  batch: number,
  h: number,
  w: number,
): Promise<Float32Array> {
  const gpu = model.gpu;
  const lr = Tensor.fromArray(gpu, planes, [batch, 3, h, w]);
  const out = gpu.noGrad(() => gpu.scope(() => model.forward(upsampleNearest(lr, model.config.scale))));
  try {
    return await out.read();
  } finally {
    lr.dispose();
    out.dispose();
  }
}

export async function upscale(model: SuperResolver, image: RgbImage, options: UpscaleOptions = {}): Promise<RgbImage> {
  if (model.training) throw new Error('upscale: put the model in eval mode (model.training = false)');
  const s = model.config.scale;
  const { width: W, height: H, channels } = image;
  const tile = Math.max(8, Math.min(options.maxTile ?? defaultTileSize(model), defaultTileSize(model)));
  const overlap = Math.min(options.overlap ?? 12, Math.floor(tile / 2));
  const ys = tileStarts(H, tile, overlap);
  const xs = tileStarts(W, tile, overlap);
  const OW = W * s;
  const OH = H * s;
  const acc = new Float32Array(3 * OW * OH);
  const weight = new Float32Array(OW * OH);
  let done = 0;
  options.onProgress?.(0, ys.length * xs.length);
  for (const [yi, y0] of ys.entries()) {
    for (const [xi, x0] of xs.entries()) {
      const th = Math.min(tile, H - y0);
      const tw = Math.min(tile, W - x0);
      const planes = new Float32Array(3 * th * tw);
      toPlanes(image, { x0, y0, width: tw, height: th }, planes);
      const out = await superResolve(model, planes, 1, th, tw);
      // NaN/Inf would round to black pixels: an error, never an image.
      const bad = out.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new Error(
          `the model produced ${out[bad]} (NaN/Inf) in the tile at (${x0}, ${y0}): its weights are broken`,
        );
      const oh = th * s;
      const ow = tw * s;
      const ov = overlap * s;
      for (let y = 0; y < oh; y++) {
        const wy = ramp(y, oh, ov, yi === 0, yi === ys.length - 1);
        for (let x = 0; x < ow; x++) {
          const wgt = wy * ramp(x, ow, ov, xi === 0, xi === xs.length - 1);
          const at = (y0 * s + y) * OW + x0 * s + x;
          weight[at] += wgt;
          for (let c = 0; c < 3; c++) acc[c * OW * OH + at] += wgt * out[(c * oh + y) * ow + x];
        }
      }
      options.onProgress?.(++done, ys.length * xs.length);
    }
  }
  for (let i = 0; i < acc.length; i++) acc[i] /= weight[i % (OW * OH)];
  const data = toPixels(acc, 0, OW, OH, new Uint8Array(OW * OH * channels), channels);
  if (channels === 4) {
    // Alpha is nearest-upsampled.
    for (let i = 0; i < OW * OH; i++)
      data[i * 4 + 3] = image.data[(Math.floor(Math.floor(i / OW) / s) * W + Math.floor((i % OW) / s)) * 4 + 3];
  }
  return { width: OW, height: OH, channels, data };
}
