#!/usr/bin/env node
// The quick-start demo: SISN x4 and x8 (weights/) on the faces in samples/. Each face is
// centre-cropped to 88x104 (the training protocol), downsampled with MATLAB bicubic, and
// super-resolved; the demo prints PSNR/SSIM against the original for bicubic and SISN and writes
// side-by-side sheets (LR nearest, bicubic, SISN, HR; magnified by whole pixels so the faces are
// about 300 pixels tall) to demo-output/. It runs as `sisn` does, without Dawn's native limit
// warnings on stderr (src/cli/quiet-dawn.ts).
import { mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Gpu, loadSisn, listImages, loadPairs, evaluate, writeSheet } from '../dist/index.js';
import { withoutDawnWarnings } from '../dist/cli/quiet-dawn.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'demo-output');
/** PSNR / SSIM in a column of the table. */
const metrics = (/** @type {import('../dist/index.js').Scores} */ m) =>
  `${m.psnr.toFixed(2)} / ${m.ssim.toFixed(3)}`.padStart(16);

async function demo() {
  mkdirSync(out, { recursive: true });
  const gpu = await Gpu.open();
  try {
    console.log(`adapter: ${gpu.describe()}`);
    const files = listImages(join(root, 'samples'));
    for (const scale of [4, 8]) {
      const weights = join(root, 'weights', `sisn-x${scale}-celeba.safetensors`);
      if (!existsSync(weights))
        throw new Error(`missing ${weights}: the trained weights ship with the repository (see weights/README.md)`);
      const model = loadSisn(gpu, weights);
      const pairs = loadPairs(join(root, 'samples'), files, { scale, hrCrop: [88, 104] });
      const started = performance.now();
      const result = await evaluate(model, pairs, 6 + scale);
      const ms = performance.now() - started;
      console.log(
        `\nx${scale} (${weights.slice(root.length)}, G${model.config.groups} I${model.config.blocks} ` +
          `C${model.config.channels}), PSNR/SSIM on RGB, border ${6 + scale}:`,
      );
      console.log(`${'face'.padEnd(12)} ${'bicubic'.padStart(16)} ${'SISN'.padStart(16)}`);
      for (const im of result.images) {
        console.log(`${im.name.padEnd(12)} ${metrics(im.bicubic)} ${metrics(im.sisn)}`);
      }
      console.log(
        `${'mean'.padEnd(12)} ${metrics(result.bicubic)} ${metrics(result.sisn)}   ` +
          `(${ms.toFixed(0)} ms for ${pairs.length} faces)`,
      );
      const sheet = join(out, `sisn-x${scale}.png`);
      const zoom = writeSheet(sheet, pairs, result.outputs, scale);
      console.log(`wrote ${sheet} (columns: LR nearest, bicubic, SISN, HR; each pixel drawn ${zoom}x${zoom})`);
      model.dispose();
    }
  } finally {
    gpu.dispose();
  }
  return 0;
}

process.exitCode = await withoutDawnWarnings(demo);
