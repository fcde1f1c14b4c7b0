/**
 * Training batches: random LR patches with their HR patches, randomly flipped horizontally and
 * rotated by 0/90/180/270 degrees (the paper's augmentation), from a seeded Rng; as float32 NCHW
 * arrays in [0, 255]. `patch` 0, or a patch larger than every image, means whole images (which
 * must then share one size).
 */
import type { FacePair } from './dataset.js';
import type { Rng } from './rng.js';
import { toPlanes } from '../io/planes.js';

export interface Batch {
  /** [B, 3, p, p] LR patches (or whole images [B, 3, h, w]). */
  lr: Float32Array;
  /** [B, 3, p*s, p*s]. */
  hr: Float32Array;
  lrShape: [number, number, number, number];
  hrShape: [number, number, number, number];
}

export class PatchSampler {
  /** LR patch [height, width]. */
  readonly patch: [number, number];
  readonly wholeImages: boolean;

  constructor(
    private readonly pairs: readonly FacePair[],
    readonly scale: number,
    readonly batchSize: number,
    patchSize: number,
    log?: (message: string) => void,
  ) {
    if (!pairs.length) throw new Error('no training images');
    const smaller = pairs.filter((p) => p.lrWidth < patchSize || p.lrHeight < patchSize);
    if (patchSize <= 0 || smaller.length === pairs.length) {
      const first = pairs[0];
      const odd = pairs.find((p) => p.lrWidth !== first.lrWidth || p.lrHeight !== first.lrHeight);
      if (odd)
        throw new Error(
          `training on whole images needs one size: ${first.name} is ${first.lrWidth}x${first.lrHeight} at LR, ` +
            `${odd.name} is ${odd.lrWidth}x${odd.lrHeight}`,
        );
      this.patch = [first.lrHeight, first.lrWidth];
      this.wholeImages = true;
      if (patchSize > 0)
        log?.(
          `every LR image (${first.lrWidth}x${first.lrHeight}) is smaller than --patch_size ${patchSize}: training ` +
            `on whole images`,
        );
    } else {
      if (smaller.length) {
        const p = smaller[0];
        throw new Error(
          `${p.name} is ${p.lrWidth}x${p.lrHeight} at LR, smaller than --patch_size ${patchSize} (${smaller.length} ` +
            `such images): lower --patch_size or remove them`,
        );
      }
      this.patch = [patchSize, patchSize];
      this.wholeImages = false;
    }
  }

  next(rng: Rng): Batch {
    const s = this.scale;
    const [ph, pw] = this.patch;
    // Rotations by 90/270 degrees swap height and width: only for square patches.
    const square = ph === pw;
    const B = this.batchSize;
    const lr = new Float32Array(B * 3 * ph * pw);
    const hr = new Float32Array(B * 3 * ph * s * pw * s);
    for (let b = 0; b < B; b++) {
      const pair = this.pairs[rng.int(this.pairs.length)];
      const y0 = rng.int(pair.lrHeight - ph + 1);
      const x0 = rng.int(pair.lrWidth - pw + 1);
      const flip = rng.int(2) === 1;
      const rot = square ? rng.int(4) : rng.int(2) * 2;
      copyPatch(pair.lr, pair.lrWidth, x0, y0, ph, pw, flip, rot, lr, b);
      copyPatch(pair.hr, pair.hrWidth, x0 * s, y0 * s, ph * s, pw * s, flip, rot, hr, b);
    }
    return { lr, hr, lrShape: [B, 3, ph, pw], hrShape: [B, 3, ph * s, pw * s] };
  }
}

/** Copies an h x w HWC patch into planar sample b of `out`, flipped then rotated `rot` quarter turns. */
function copyPatch(
  src: Uint8Array,
  srcWidth: number,
  x0: number,
  y0: number,
  h: number,
  w: number,
  flip: boolean,
  rot: number,
  out: Float32Array,
  b: number,
): void {
  // Output pixel (y, x) reads the source at the inverse of flip-then-rotate.
  // Quarter turns 1 and 3 only occur for square patches (h = w).
  toPlanes({ data: src, width: srcWidth, channels: 3 }, { x0, y0, width: w, height: h }, out, b, (y, x) => {
    const [sy, sx] =
      rot === 0 ? [y, x] : rot === 1 ? [x, h - 1 - y] : rot === 2 ? [h - 1 - y, w - 1 - x] : [w - 1 - x, y];
    return [sy, flip ? w - 1 - sx : sx];
  });
}
