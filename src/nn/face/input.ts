/**
 * The networks' inputs, made on the CPU exactly as face-api makes them: the image padded with black
 * to a square (centred for the recognizer, on the right or bottom for the detector), resized with
 * tfjs's bilinear resize (align_corners and half_pixel_centers false: source = output * in / out),
 * minus a per-channel mean, divided by 255; planar [3, size, size]. Boxes are cut the way face-api's
 * extractFaceTensors cuts them: clipped at the image borders, then each of x, y, width, height floored.
 */
import type { RgbImage } from '../../io/image.js';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Where an image lies in its padded square: the square's side and the image's offset in it. */
function square(image: RgbImage, centre: boolean): { side: number; dx: number; dy: number } {
  const { width, height } = image;
  const side = Math.max(width, height);
  // padToSquare appends round(diff / 2) when centring and puts the remainder before the image.
  const before = (diff: number) => (centre ? diff - Math.round(diff / 2) : 0);
  return { side, dx: before(side - width), dy: before(side - height) };
}

/** Source index pairs and fractions of tfjs's bilinear resize from `from` to `to` samples. */
function taps(from: number, to: number): { lo: Int32Array; hi: Int32Array; frac: Float64Array } {
  const lo = new Int32Array(to);
  const hi = new Int32Array(to);
  const frac = new Float64Array(to);
  const ratio = from / to;
  for (let i = 0; i < to; i++) {
    const src = ratio * i;
    lo[i] = Math.max(0, Math.floor(src));
    hi[i] = Math.min(from - 1, Math.ceil(src));
    frac[i] = src - lo[i];
  }
  return { lo, hi, frac };
}

/**
 * Writes the network input of `image` into `out` at sample `sample` of a [B, 3, size, size] batch
 * (a new [3, size, size] array by default).
 */
export function networkInput(
  image: RgbImage,
  size: number,
  options: { centre: boolean; mean: readonly [number, number, number] },
  out = new Float32Array(3 * size * size),
  sample = 0,
): Float32Array {
  if (!(image.width > 0 && image.height > 0))
    throw new Error(`networkInput: an empty ${image.width}x${image.height} image`);
  const { side, dx, dy } = square(image, options.centre);
  const { channels: n, data, width } = image;
  // A pixel of the padded square: the image's, or black outside it.
  const at = (y: number, x: number, c: number) => {
    const iy = y - dy;
    const ix = x - dx;
    return iy >= 0 && ix >= 0 && iy < image.height && ix < width ? data[(iy * width + ix) * n + c] : 0;
  };
  const same = side === size;
  const rows = taps(side, size);
  const cols = taps(side, size);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const base = (sample * 3 + c) * plane;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let v: number;
        if (same) v = at(y, x, c);
        else {
          const [y0, y1, fy] = [rows.lo[y], rows.hi[y], rows.frac[y]];
          const [x0, x1, fx] = [cols.lo[x], cols.hi[x], cols.frac[x]];
          const top = at(y0, x0, c) + (at(y0, x1, c) - at(y0, x0, c)) * fx;
          const bottom = at(y1, x0, c) + (at(y1, x1, c) - at(y1, x0, c)) * fx;
          v = Math.fround(top + (bottom - top) * fy);
        }
        out[base + y * size + x] = (v - options.mean[c]) / 255;
      }
    }
  }
  return out;
}

/** The pixels of `box` (clipped to the image, then floored as face-api does), RGB. */
export function cropBox(image: RgbImage, box: Box): RgbImage {
  const x = Math.max(box.x, 0);
  const y = Math.max(box.y, 0);
  const width = Math.floor(Math.min(box.x + box.width - x, image.width - x));
  const height = Math.floor(Math.min(box.y + box.height - y, image.height - y));
  const [x0, y0] = [Math.floor(x), Math.floor(y)];
  if (!(width > 0 && height > 0))
    throw new Error(`cropBox: box ${JSON.stringify(box)} lies outside the ${image.width}x${image.height} image`);
  const out = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const from = ((y0 + r) * image.width + x0 + c) * image.channels;
      out.set(image.data.subarray(from, from + 3), (r * width + c) * 3);
    }
  }
  return { width, height, channels: 3, data: out };
}
