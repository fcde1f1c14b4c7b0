#!/usr/bin/env node
// Exports the model of a training checkpoint as a weights-only safetensors file (no optimiser
// state), with the config and training provenance in its metadata.
// Usage: node scripts/export-weights.mjs runs/x4/best.safetensors weights/sisn-x4-celeba.safetensors
import { readFileSync } from 'node:fs';
import { Gpu, loadCheckpoint, saveSisn, parseSafetensors } from '../dist/index.js';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error('usage: node scripts/export-weights.mjs CHECKPOINT OUT.safetensors');
  process.exit(2);
}
const gpu = await Gpu.open();
try {
  const { model, meta } = loadCheckpoint(gpu, src);
  const { options } = meta;
  await saveSisn(model, dst, {
    trained_steps: String(meta.step),
    best_validation_psnr: meta.bestPsnr.toFixed(3),
    dataset: String(options.dataset_root).split('/').slice(-2).join('/'),
    train_val_range: String(options.train_val_range),
    hr_crop: String(/** @type {string | undefined} */ (options.hr_crop) ?? ''),
    producer: 'sisn-webgpu train.js',
  });
  const written = readFileSync(dst);
  console.log(
    `${dst}: ${JSON.stringify(model.config)}, step ${meta.step}, best validation PSNR ${meta.bestPsnr.toFixed(2)} ` +
      `dB, ${(written.length / 1024).toFixed(0)} KiB, ${parseSafetensors(written).tensors.size} tensors`,
  );
  model.dispose();
} finally {
  gpu.dispose();
}
