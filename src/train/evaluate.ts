/**
 * Evaluation of SISN (and the bicubic baseline) on LR/HR pairs: PSNR and SSIM on uint8-rounded
 * output, RGB and Y, after a border crop (6 + scale in the official code).
 */
import type { SISN } from '../nn/sisn.js';
import { superResolve } from '../nn/upscale.js';
import { toPlanes, toPixels } from '../io/planes.js';
import type { FacePair } from '../data/dataset.js';
import { imresize } from '../io/resize.js';
import { psnr, ssim, type MetricImage } from '../metrics/index.js';

export interface Scores {
  psnr: number;
  psnrY: number;
  ssim: number;
  ssimY: number;
}

export interface EvalResult {
  sisn: Scores;
  bicubic: Scores;
  images: { name: string; sisn: Scores; bicubic: Scores }[];
  /** SISN's uint8 outputs (HWC RGB), in the order of the pairs. */
  outputs: Uint8Array[];
}

/** SISN outputs (uint8 HWC RGB) for every pair, batching pairs of equal size. */
export async function predict(model: SISN, pairs: readonly FacePair[], batch = 8): Promise<Uint8Array[]> {
  const s = model.config.scale;
  const wasTraining = model.training;
  model.training = false;
  const out = new Array<Uint8Array>(pairs.length);
  const bySize = new Map<string, number[]>();
  pairs.forEach((p, i) => {
    const key = `${p.lrWidth}x${p.lrHeight}`;
    bySize.set(key, [...(bySize.get(key) ?? []), i]);
  });
  try {
    for (const indices of bySize.values()) {
      for (let k = 0; k < indices.length; k += batch) {
        const chunk = indices.slice(k, k + batch);
        const { lrWidth: w, lrHeight: h } = pairs[chunk[0]];
        const planes = new Float32Array(chunk.length * 3 * h * w);
        chunk.forEach((idx, b) =>
          toPlanes({ data: pairs[idx].lr, width: w, channels: 3 }, { x0: 0, y0: 0, width: w, height: h }, planes, b),
        );
        const values = await superResolve(model, planes, chunk.length, h, w);
        chunk.forEach((idx, b) => (out[idx] = toPixels(values, b, w * s, h * s, new Uint8Array(h * s * w * s * 3))));
      }
    }
  } finally {
    model.training = wasTraining;
  }
  return out;
}

/** MATLAB bicubic upsampling of the LR image (uint8 semantics): the baseline row of SR tables. */
export function bicubicUp(p: FacePair, scale: number): Uint8Array {
  return Uint8Array.from(imresize(p.lr, p.lrHeight, p.lrWidth, 3, scale, 1, 'matlab').data);
}

function scores(hr: MetricImage, sr: MetricImage, border: number): Scores {
  return {
    psnr: psnr(hr, sr, { border }),
    psnrY: psnr(hr, sr, { border, y: true }),
    ssim: ssim(hr, sr, { border }),
    ssimY: ssim(hr, sr, { border, y: true }),
  };
}

function mean(list: Scores[]): Scores {
  const avg = (k: keyof Scores) => list.reduce((s, x) => s + x[k], 0) / list.length;
  return { psnr: avg('psnr'), psnrY: avg('psnrY'), ssim: avg('ssim'), ssimY: avg('ssimY') };
}

/** Mean PSNR/SSIM over the pairs (PSNR averaged per image in dB, as the official code). */
export async function evaluate(
  model: SISN,
  pairs: readonly FacePair[],
  border: number,
  withBicubic = true,
): Promise<EvalResult> {
  if (!pairs.length) throw new Error('no images to evaluate');
  const s = model.config.scale;
  const outputs = await predict(model, pairs);
  const images = pairs.map((p, i) => {
    const hr = { width: p.hrWidth, height: p.hrHeight, channels: 3, data: p.hr };
    const sr = { ...hr, data: outputs[i] };
    const sisn = scores(hr, sr, border);
    const bicubic = withBicubic ? scores(hr, { ...hr, data: bicubicUp(p, s) }, border) : sisn;
    return { name: p.name, sisn, bicubic };
  });
  return { sisn: mean(images.map((x) => x.sisn)), bicubic: mean(images.map((x) => x.bicubic)), images, outputs };
}
