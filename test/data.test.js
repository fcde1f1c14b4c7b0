// MATLAB-style bicubic resizing and PSNR/SSIM against the reference fixtures (CPU, float64).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  parseSafetensors,
  imresize,
  imresizeTo,
  modCrop,
  resampleWeights,
  psnr,
  ssim,
  mse,
  listImages,
  loadPairs,
} from '../dist/index.js';
import { entryOf, readJson } from './helpers.js';

/** @param {string} name */
const dir = (name) => fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));
/**
 * The imresize fixture's manifest: resampling matrices of MATLAB's imresize, and the input images.
 * @typedef {{ scale: string, n_in: number, n_out: number, matrix: number[][] }} ResamplingCase
 * @typedef {{ resampling_matrices: { cases: ResamplingCase[] }, inputs: Record<string, unknown> }} ImresizeManifest
 */
const imresizeManifest = /** @type {ImresizeManifest} */ (readJson(dir('imresize') + 'manifest.json'));

test('imresize: 1-D resampling matrices equal the reference', () => {
  for (const c of imresizeManifest.resampling_matrices.cases) {
    const [num, den] = c.scale.includes('/') ? c.scale.split('/').map(Number) : [Number(c.scale), 1];
    const { nOut, taps, weights } = resampleWeights(c.n_in, num, den);
    assert.is(nOut, c.n_out);
    for (let i = 0; i < nOut; i++) {
      const row = new Float64Array(c.n_in);
      taps[i].forEach((j, k) => (row[j] += weights[i][k]));
      row.forEach((v, j) =>
        assert.ok(
          Math.abs(v - c.matrix[i][j]) < 1e-12,
          `${c.scale} n=${c.n_in} [${i}][${j}]: ${v} vs ${c.matrix[i][j]}`,
        ),
      );
    }
  }
});

for (const name of Object.keys(imresizeManifest.inputs)) {
  test(`imresize ${name}: down and up x2/x3/x4/x8, float, MATLAB uint8 and round-once`, () => {
    const t = parseSafetensors(readFileSync(dir('imresize') + `${name}.safetensors`)).tensors;
    const input = entryOf(t, 'input');
    const [h, w, c] = input.shape.length === 3 ? input.shape : [...input.shape, 1];
    for (const s of [2, 3, 4, 8]) {
      const crop = modCrop(input.data, h, w, c, s);
      /** @type {(key: string, got: ArrayLike<number>, exact: boolean) => void} */
      const check = (key, got, exact) => {
        const ref = entryOf(t, key).data;
        assert.is(got.length, ref.length, key);
        for (let i = 0; i < ref.length; i++) {
          const ok = exact ? got[i] === ref[i] : Math.abs(got[i] - ref[i]) <= 1e-4;
          if (!ok) assert.unreachable(`${name} ${key}[${i}]: ${got[i]} vs ${ref[i]}`);
        }
      };
      check(`down_x${s}.f32`, imresize(crop.data, crop.height, crop.width, c, 1, s, 'none').data, false);
      const lr = imresize(crop.data, crop.height, crop.width, c, 1, s, 'matlab');
      check(`down_x${s}.u8_matlab`, lr.data, true);
      check(`down_x${s}.u8_round_once`, imresize(crop.data, crop.height, crop.width, c, 1, s, 'once').data, true);
      const lrU8 = entryOf(t, `down_x${s}.u8_matlab`).data;
      check(`up_x${s}.f32`, imresize(lrU8, lr.height, lr.width, c, s, 1, 'none').data, false);
      check(`up_x${s}.u8_matlab`, imresize(lrU8, lr.height, lr.width, c, s, 1, 'matlab').data, true);
      check(`up_x${s}.u8_round_once`, imresize(lrU8, lr.height, lr.width, c, s, 1, 'once').data, true);
    }
  });
}

test('imresizeTo scales each dimension by its own factor (and equals imresize for equal ones)', () => {
  const t = parseSafetensors(readFileSync(dir('imresize') + 'face_a.safetensors')).tensors;
  const input = entryOf(t, 'input');
  const crop = modCrop(input.data, 102, 86, 3, 2);
  const same = imresizeTo(crop.data, crop.height, crop.width, 3, crop.height / 2, crop.width / 2, 'matlab');
  assert.equal([...same.data], [...entryOf(t, 'down_x2.u8_matlab').data]);
  const odd = imresizeTo(input.data, 102, 86, 3, 64, 50, 'matlab');
  assert.is(odd.height, 64);
  assert.is(odd.width, 50);
  assert.ok(odd.data.every((v) => v >= 0 && v <= 255 && Number.isInteger(v)));
});

test('datasets too large for memory are decoded on use, with the same pixels', () => {
  const root = dir('faces');
  const files = listImages(root);
  /** @type {import('../dist/index.js').DatasetOptions} */
  const options = { scale: 4, hrCrop: [88, 104] };
  const eager = loadPairs(root, files, options);
  /** @type {string[]} */
  const messages = [];
  const lazy = loadPairs(root, files, { ...options, log: (m) => messages.push(m) }, 1000);
  assert.match(messages.join('\n'), /decoding images as they are used/);
  assert.is(lazy.length, eager.length);
  lazy.forEach((p, i) => {
    assert.is(p.name, eager[i].name);
    assert.equal([p.hrWidth, p.hrHeight, p.lrWidth, p.lrHeight], [88, 104, 22, 26]);
    assert.ok(
      Buffer.from(p.hr).equals(Buffer.from(eager[i].hr)) && Buffer.from(p.lr).equals(Buffer.from(eager[i].lr)),
      p.name,
    );
  });
});

test('PSNR and SSIM match the reference values (RGB, Y, rounded Y; borders 0, 10, 14)', () => {
  /**
   * The metrics fixture: per image pair, the reference values at each border.
   * @typedef {{ mse_rgb: number, psnr_rgb: number | null, psnr_y: number | null, psnr_y_u8: number | null,
   *   ssim_rgb: number, ssim_y: number, ssim_y_u8: number }} PairScores
   * @typedef {{ borders: number[],
   *   pairs: Record<string, { safetensors_key: string, [border: `border_${number}`]: PairScores }> }} MetricsFixture
   */
  const m = /** @type {MetricsFixture} */ (readJson(dir('metrics') + 'metrics.json'));
  const t = parseSafetensors(readFileSync(dir('metrics') + 'pairs.safetensors')).tensors;
  /** @param {string} key */
  const img = (key) => ({
    height: entryOf(t, key).shape[0],
    width: entryOf(t, key).shape[1],
    channels: 3,
    data: entryOf(t, key).data,
  });
  const hr = img('hr');
  let checked = 0;
  for (const [name, pair] of Object.entries(m.pairs)) {
    const sr = img(pair.safetensors_key);
    for (const b of m.borders) {
      const ref = pair[`border_${b}`];
      /** @type {(got: number, want: number | null, tol: number, what: string) => void} */
      const near = (got, want, tol, what) => {
        if (want === null) assert.is(got, Infinity, `${name} b${b} ${what}`);
        else assert.ok(Math.abs(got - want) <= tol, `${name} b${b} ${what}: ${got} vs ${want}`);
        checked++;
      };
      near(mse(hr, sr, { border: b }) / (ref.mse_rgb || 1), ref.mse_rgb ? 1 : 0, 1e-6, 'mse_rgb');
      near(psnr(hr, sr, { border: b }), ref.psnr_rgb, 1e-3, 'psnr_rgb');
      near(psnr(hr, sr, { border: b, y: true }), ref.psnr_y, 1e-3, 'psnr_y');
      near(psnr(hr, sr, { border: b, y: true, roundY: true }), ref.psnr_y_u8, 1e-3, 'psnr_y_u8');
      near(ssim(hr, sr, { border: b }), ref.ssim_rgb, 1e-4, 'ssim_rgb');
      near(ssim(hr, sr, { border: b, y: true }), ref.ssim_y, 1e-4, 'ssim_y');
      near(ssim(hr, sr, { border: b, y: true, roundY: true }), ref.ssim_y_u8, 1e-4, 'ssim_y_u8');
    }
  }
  assert.ok(checked >= 140);
  assert.ok(Math.abs(ssim(hr, hr) - 1) < 1e-12);
});

test.run();
