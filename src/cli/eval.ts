/** `sisn eval`: PSNR/SSIM of SISN and of bicubic upsampling on a test folder or index range. */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { Gpu } from '../gpu/device.js';
import { loadSisn } from '../io/weights.js';
import { listImages, loadPairs, selectRange } from '../data/dataset.js';
import { evaluate, type Scores } from '../train/evaluate.js';
import { parseCrop } from '../train/trainer.js';

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      weights: { type: 'string', short: 'w' },
      dataset_root: { type: 'string' },
      range: { type: 'string' },
      lr_root: { type: 'string' },
      hr_crop: { type: 'string' },
      border: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: sisn eval --weights W --dataset_root DIR [--range 9501-10000] [--lr_root DIR] [--hr_crop WxH] [--border B] [--json OUT]');
    return 0;
  }
  if (!values.weights) throw new Error('--weights is required');
  if (!values.dataset_root) throw new Error('--dataset_root is required');
  const gpu = await Gpu.open();
  try {
    const model = loadSisn(gpu, values.weights);
    const s = model.config.scale;
    const border = values.border === undefined ? 6 + s : Number(values.border);
    if (!(Number.isInteger(border) && border >= 0)) throw new Error(`--border must be a non-negative integer, got ${values.border}`);
    let files = listImages(values.dataset_root);
    if (values.range) files = selectRange(files, values.range, '--range');
    const started = Date.now();
    const pairs = loadPairs(values.dataset_root, files, { scale: s, hrCrop: parseCrop(values.hr_crop), lrRoot: values.lr_root, log: (m) => console.error(m) });
    const result = await evaluate(model, pairs, border);
    const seconds = (Date.now() - started) / 1000;
    const row = (name: string, x: Scores) => `${name.padEnd(10)} ${x.psnr.toFixed(3).padStart(9)} ${x.psnrY.toFixed(3).padStart(9)} ${x.ssim.toFixed(4).padStart(8)} ${x.ssimY.toFixed(4).padStart(8)}`;
    console.log(`${pairs.length} faces from ${values.dataset_root}${values.range ? ` [${values.range}]` : ''}, x${s}, border ${border}, ${values.weights}`);
    console.log(`${'method'.padEnd(10)} ${'PSNR RGB'.padStart(9)} ${'PSNR Y'.padStart(9)} ${'SSIM RGB'.padStart(8)} ${'SSIM Y'.padStart(8)}`);
    console.log(row('bicubic', result.bicubic));
    console.log(row('SISN', result.sisn));
    console.log(`SISN - bicubic: ${(result.sisn.psnr - result.bicubic.psnr).toFixed(3)} dB PSNR, ${(result.sisn.ssim - result.bicubic.ssim).toFixed(4)} SSIM (${seconds.toFixed(1)} s)`);
    if (values.json) {
      writeFileSync(values.json, JSON.stringify({ weights: values.weights, dataset_root: values.dataset_root, range: values.range ?? null, scale: s, border, config: model.config, count: pairs.length, sisn: result.sisn, bicubic: result.bicubic, images: result.images }, null, 1));
    }
    model.dispose();
  } finally {
    gpu.dispose();
  }
  return 0;
}
