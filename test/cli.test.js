// `sisn upscale` and image I/O: right sizes, RGBA and grayscale, tiling without seams, bad inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';
import { loadSisn, readImage, encodePng, decodeImage, readTorchCheckpoint, readStateDict } from '../dist/index.js';
import { withGpu } from './helpers.js';

const test = suite('cli');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const face = join(root, 'test/fixtures/faces/009501.jpg');
const safetensors = join(root, 'test/fixtures/sisn-small/weights.safetensors');
const pt = join(root, 'test/fixtures/sisn-small/weights_dataparallel.pt');
const tmp = mkdtempSync(join(tmpdir(), 'sisn-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** @param {string[]} args */
const sisn = (...args) =>
  spawnSync(process.execPath, [join(root, 'dist/cli/bin.js'), ...args], { encoding: 'utf8', timeout: 120000 });
/** @param {string} path */
const pngInfo = (path) => {
  const p = pngjs.PNG.sync.read(readFileSync(path));
  return { width: p.width, height: p.height, alpha: p.alpha };
};

test('a .pt state_dict (DataParallel, module. prefix) loads the same tensors as safetensors', () => {
  const a = readStateDict(safetensors);
  const b = readTorchCheckpoint(pt);
  assert.is(b.size, a.size);
  for (const [k, t] of a) {
    const u = b.get(`module.${k}`);
    assert.ok(u, k);
    assert.equal(u.shape, t.shape);
    assert.ok(
      t.data.every((v, i) => Object.is(v, u.data[i])),
      `${k} differs`,
    );
  }
  const model = loadSisn(ctx.gpu, pt);
  assert.equal(model.config, { scale: 4, groups: 2, blocks: 2, channels: 32 });
  model.dispose();
});

test('sisn upscale on a sample face writes a PNG of the right size', () => {
  const out = join(tmp, 'face_x4.png');
  const r = sisn('upscale', face, '-o', out, '--weights', pt, '--scale', '4');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /\(89x109\) -> .* \(356x436\)/);
  assert.equal(pngInfo(out), { width: 356, height: 436, alpha: false });
});

test('several inputs go to a directory; RGBA keeps its alpha, grayscale becomes RGB', () => {
  const img = readImage(face);
  const rgba = new Uint8Array(img.width * img.height * 4);
  const gray = new pngjs.PNG({ width: img.width, height: img.height, colorType: 0 });
  for (let i = 0; i < img.width * img.height; i++) {
    rgba.set([img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2], i % 2 ? 255 : 128], 4 * i);
    const y = Math.round((img.data[3 * i] + img.data[3 * i + 1] + img.data[3 * i + 2]) / 3);
    gray.data.set([y, y, y, 255], 4 * i);
  }
  writeFileSync(join(tmp, 'rgba.png'), encodePng({ width: img.width, height: img.height, channels: 4, data: rgba }));
  writeFileSync(join(tmp, 'gray.png'), pngjs.PNG.sync.write(gray, { colorType: 0 }));
  assert.is(decodeImage(readFileSync(join(tmp, 'gray.png'))).channels, 3);
  const outDir = join(tmp, 'many');
  const r = sisn(
    'upscale',
    join(tmp, 'rgba.png'),
    join(tmp, 'gray.png'),
    '-o',
    outDir,
    '--weights',
    safetensors,
    '--tile',
    '48',
  );
  assert.is(r.status, 0, r.stderr);
  assert.equal(pngInfo(join(outDir, 'rgba_x4.png')), { width: 356, height: 436, alpha: true });
  assert.equal(pngInfo(join(outDir, 'gray_x4.png')), { width: 356, height: 436, alpha: false });
  const alpha = pngjs.PNG.sync.read(readFileSync(join(outDir, 'rgba_x4.png'))).data;
  assert.is(alpha[3], 128, 'alpha is nearest-upsampled');
  assert.is(alpha[4 * 4 + 3], 255);
});

test('tiled inference is seamless: within 40 dB PSNR of a single pass', async () => {
  const model = loadSisn(ctx.gpu, safetensors);
  const img = readImage(face);
  const whole = await model.upscale(img);
  let tiles = 0;
  const tiled = await model.upscale(img, { maxTile: 40, overlap: 12, onProgress: (_done, total) => (tiles = total) });
  assert.ok(tiles > 1, 'the image was not tiled');
  let se = 0;
  for (let i = 0; i < whole.data.length; i++) se += (whole.data[i] - tiled.data[i]) ** 2;
  const psnr = 10 * Math.log10((255 * 255) / (se / whole.data.length));
  assert.ok(psnr > 40, `tiled vs whole: ${psnr.toFixed(1)} dB`);
  model.dispose();
});

test('bad inputs: clear errors, non-zero exit, no partial output', () => {
  const out = join(tmp, 'bad.png');
  let r = sisn('upscale', join(tmp, 'missing.jpg'), '-o', out, '--weights', safetensors);
  assert.is(r.status, 1);
  assert.match(r.stderr, /cannot read .*missing\.jpg/);
  writeFileSync(join(tmp, 'notes.txt'), 'not an image');
  r = sisn('upscale', join(tmp, 'notes.txt'), '-o', out, '--weights', safetensors);
  assert.is(r.status, 1);
  assert.match(r.stderr, /notes\.txt: cannot decode image: not a PNG or JPEG/);
  writeFileSync(join(tmp, 'broken.png'), readFileSync(join(tmp, 'rgba.png')).subarray(0, 200));
  r = sisn('upscale', join(tmp, 'broken.png'), '-o', out, '--weights', safetensors);
  assert.is(r.status, 1);
  assert.match(r.stderr, /broken\.png: cannot decode image/);
  r = sisn('upscale', face, '-o', out, '--weights', safetensors, '--scale', '8');
  assert.is(r.status, 1);
  assert.match(r.stderr, /x4 model, but --scale 8/);
  r = sisn('upscale', face, '-o', out, '--weights', join(tmp, 'notes.txt'));
  assert.is(r.status, 1);
  assert.match(r.stderr, /notes\.txt/);
  r = sisn('upscale', face, '-o', out, '--scale', '2');
  assert.is(r.status, 2);
  assert.match(r.stderr, /no shipped weights for x2/);
  r = sisn('upscale', face, '-o', out, '--weights', safetensors, '--scale', '5');
  assert.is(r.status, 2);
  assert.ok(!existsSync(out), 'a partial output file was written');
  assert.ok(!readdirSync(tmp).some((f) => f.endsWith('.tmp')));
});

test.run();
