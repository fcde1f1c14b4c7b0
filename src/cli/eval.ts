/**
 * `sisn eval`: PSNR/SSIM of SISN and of bicubic upsampling on a test folder or index range; with
 * `--identity`, the face identity test of SISN, bicubic and LR-nearest against HR (train/identity.ts).
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { Gpu } from '../engine.js';
import { loadSisn } from '../nn/sisn-weights.js';
import { listImages, loadPairs, selectRange, parseSize } from '../data/dataset.js';
import { evaluate, bicubicUp, type Scores } from '../train/evaluate.js';
import { evaluateIdentity, nearestUp, IDENTITY_METHODS, type IdentityResult } from '../train/identity.js';
import { loadFaceNets, readFaceWeights } from '../nn/face/index.js';
import { faceModelDir, detectOptions } from './face.js';
import { checkFolderPath, makeFolder } from '../io/folders.js';
import { dirname, resolve } from 'node:path';

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      weights: { type: 'string', short: 'w' },
      dataset_root: { type: 'string', multiple: true },
      range: { type: 'string' },
      lr_root: { type: 'string' },
      hr_crop: { type: 'string' },
      hr_size: { type: 'string' },
      border: { type: 'string' },
      json: { type: 'string' },
      identity: { type: 'boolean' },
      models: { type: 'string' },
      input_size: { type: 'string' },
      min_score: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`usage: sisn eval --weights W --dataset_root DIR [--dataset_root DIR2 ...] [--range 9501-10000]
                 [--lr_root DIR] [--hr_crop WxH] [--hr_size WxH] [--border B] [--json OUT]
                 [--identity [--input_size N] [--min_score S] [--models DIR]]
  --range      1-based index range of the sorted files (one dataset root only)
  --hr_crop    centre-crop HR images first; --hr_size then resizes them (MATLAB bicubic)
  --identity   also the face identity test (docs/identity.md): the face detected on HR, the same box
               cut from SISN, bicubic and LR-nearest; descriptor distance to HR, share matched
               below 0.6, rank-1 identification, detection rate of each (face-api's networks)`);
    return 0;
  }
  if (!values.weights) throw new Error('--weights is required');
  const roots = values.dataset_root ?? [];
  if (!roots.length) throw new Error('--dataset_root is required');
  if (values.range && roots.length > 1) throw new Error('--range needs exactly one --dataset_root');
  if (values.json) checkFolderPath(dirname(resolve(values.json)), '--json folder');
  const detect = detectOptions(values);
  const faceWeights = values.identity ? readFaceWeights(faceModelDir(values.models)) : null;
  const gpu = await Gpu.open();
  try {
    const model = loadSisn(gpu, values.weights);
    const s = model.config.scale;
    const border = values.border === undefined ? 6 + s : Number(values.border);
    if (!(Number.isInteger(border) && border >= 0))
      throw new Error(`--border must be a non-negative integer, got ${values.border}`);
    const started = Date.now();
    const options = {
      scale: s,
      hrCrop: parseSize(values.hr_crop),
      hrSize: parseSize(values.hr_size, '--hr_size'),
      lrRoot: values.lr_root,
      log: (m: string) => console.error(m),
    };
    const pairs = roots.flatMap((root) => {
      const files = listImages(root);
      return loadPairs(root, values.range ? selectRange(files, values.range, '--range') : files, options);
    });
    const result = await evaluate(model, pairs, border);
    const seconds = (Date.now() - started) / 1000;
    const row = (name: string, x: Scores) =>
      `${name.padEnd(10)} ${x.psnr.toFixed(3).padStart(9)} ${x.psnrY.toFixed(3).padStart(9)} ` +
      `${x.ssim.toFixed(4).padStart(8)} ${x.ssimY.toFixed(4).padStart(8)}`;
    console.log(
      `${pairs.length} faces from ${roots.join(', ')}${values.range ? ` [${values.range}]` : ''}, x${s}, border ` +
        `${border}, ${values.weights}`,
    );
    console.log(
      `${'method'.padEnd(10)} ${'PSNR RGB'.padStart(9)} ${'PSNR Y'.padStart(9)} ${'SSIM RGB'.padStart(8)} ` +
        `${'SSIM Y'.padStart(8)}`,
    );
    console.log(row('bicubic', result.bicubic));
    console.log(row('SISN', result.sisn));
    console.log(
      `SISN - bicubic: ${(result.sisn.psnr - result.bicubic.psnr).toFixed(3)} dB PSNR, ` +
        `${(result.sisn.ssim - result.bicubic.ssim).toFixed(4)} SSIM (${seconds.toFixed(1)} s)`,
    );
    let identity: IdentityResult | null = null;
    if (faceWeights) {
      const nets = loadFaceNets(gpu, faceWeights);
      try {
        const outputs = {
          sisn: result.outputs,
          bicubic: pairs.map((p) => bicubicUp(p, s)),
          nearest: pairs.map((p) => nearestUp(p, s)),
        };
        identity = await evaluateIdentity(nets, pairs, outputs, detect, (m) => console.error(m));
      } finally {
        nets.recognizer.dispose();
        nets.detector.dispose();
      }
      printIdentity(identity);
    }
    if (values.json) {
      makeFolder(dirname(resolve(values.json)), '--json folder');
      writeFileSync(
        values.json,
        JSON.stringify(
          {
            weights: values.weights,
            dataset_root: roots,
            range: values.range ?? null,
            hr_crop: values.hr_crop ?? null,
            hr_size: values.hr_size ?? null,
            scale: s,
            border,
            config: model.config,
            count: pairs.length,
            sisn: result.sisn,
            bicubic: result.bicubic,
            images: result.images,
            ...(identity ? { identity: { ...identity, input_size: detect.inputSize ?? null } } : {}),
          },
          null,
          1,
        ),
      );
    }
    model.dispose();
  } finally {
    gpu.dispose();
  }
  return 0;
}

function printIdentity(r: IdentityResult): void {
  const more = r.missedOnHr.length > 5 ? ', ...' : '';
  const missed = r.missedOnHr.length ? ` (missed: ${r.missedOnHr.slice(0, 5).join(', ')}${more})` : '';
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`.padStart(9);
  console.log(`identity: the face found on HR in ${r.found} of ${r.count} images${missed}`);
  console.log(
    `${'method'.padEnd(10)} ${['detected', 'distance', 'matched', 'rank-1'].map((h) => h.padStart(9)).join(' ')}`,
  );
  console.log(`${'HR'.padEnd(10)} ${pct(r.hr.detectionRate)}`);
  for (const m of IDENTITY_METHODS) {
    const x = r.methods[m];
    const name = { sisn: 'SISN', bicubic: 'bicubic', nearest: 'LR' }[m];
    console.log(
      `${name.padEnd(10)} ${pct(x.detectionRate)} ${x.meanDistance.toFixed(4).padStart(9)} ` +
        `${pct(x.matched)} ${pct(x.rank1)}`,
    );
  }
}
