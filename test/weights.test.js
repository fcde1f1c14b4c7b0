// The shipped models: each loads, matches its model card's config, and beats bicubic on the
// bundled sample faces (test split of the training protocol).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadSisn, listImages, loadPairs, evaluate } from '../dist/index.js';
import { withGpu } from './helpers.js';

const test = suite('shipped weights');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const samples = join(root, 'samples');

for (const scale of [4, 8]) {
  test(`weights/sisn-x${scale}-celeba.safetensors beats bicubic on the sample faces (PSNR and SSIM)`, async () => {
    const model = loadSisn(ctx.gpu, join(root, 'weights', `sisn-x${scale}-celeba.safetensors`));
    assert.is(model.config.scale, scale);
    const pairs = loadPairs(samples, listImages(samples), { scale, hrCrop: [88, 104] });
    const result = await evaluate(model, pairs, 6 + scale);
    assert.ok(
      result.sisn.psnr > result.bicubic.psnr + 0.5,
      `PSNR ${result.sisn.psnr.toFixed(2)} vs bicubic ${result.bicubic.psnr.toFixed(2)}`,
    );
    assert.ok(
      result.sisn.ssim > result.bicubic.ssim,
      `SSIM ${result.sisn.ssim.toFixed(4)} vs bicubic ${result.bicubic.ssim.toFixed(4)}`,
    );
    for (const im of result.images)
      assert.ok(
        im.sisn.psnr > im.bicubic.psnr,
        `${im.name}: SISN ${im.sisn.psnr.toFixed(2)} dB <= bicubic ${im.bicubic.psnr.toFixed(2)} dB`,
      );
    model.dispose();
  });
}

test('sisn upscale uses the shipped x4 weights by default (and makes the output folder)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sisn-weights-'));
  const out = join(dir, 'new', 'face_x4.png');
  try {
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist/cli/bin.js'), 'upscale', join(samples, '009509.jpg'), '-o', out],
      { encoding: 'utf8', timeout: 120000 },
    );
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /\(89x109\) -> .* \(356x436\)/);
    assert.ok(existsSync(out), `no output at ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
