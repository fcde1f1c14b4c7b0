// Training pipeline: `node train.js` on the shipped faces, exact resume, crash safety, bad data, eval.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadSisn, Rng, PatchSampler, loadCheckpoint, encodePng, TRAIN_DEFAULTS } from '../dist/index.js';
import { startOptions } from '../dist/train/start.js';
import { joinPatterns, withGpu, cases, parseJson, readJson } from './helpers.js';

const test = suite('train');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const faces = join(root, 'test/fixtures/faces');
const tmp = mkdtempSync(join(tmpdir(), 'sisn-train-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// No kernel tuning (test/tune.test.js covers it) and no choices from other tests (an empty cache
// folder): every run launches the default variants, so runs compare bit for bit.
const TINY = [
  '--dataset_root',
  faces,
  '--train_val_range',
  '1-6/7-8',
  '--hr_crop',
  '88x104',
  '--num_groups',
  '1',
  '--num_blocks',
  '1',
  '--num_channels',
  '8',
  '--batch_size',
  '4',
  '--patch_size',
  '8',
  '--lr',
  '1e-3',
  '--no_tune',
];
const untunedEnv = { ...process.env, SISN_CACHE_DIR: join(tmp, 'no-kernel-choices') };
/** @param {string[]} args */
const trainJs = (...args) =>
  spawnSync(process.execPath, [join(root, 'train.js'), ...args], {
    encoding: 'utf8',
    env: untunedEnv,
    timeout: 300000,
  });
/**
 * One line of a run's log.jsonl, the fields the tests read: a train step's loss or a validation's scores.
 * @typedef {{ type: string, step: number, loss: number, psnr: number, ssim: number, seconds?: number }} LogEntry
 */

/**
 * The run's log.jsonl, one parsed entry a line.
 * @param {string} dir
 */
const log = (dir) =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => /** @type {LogEntry} */ (parseJson(l)));

test(
  'node train.js trains a tiny SISN on the shipped faces: the loss falls, checkpoints and reports are ' + 'written',
  () => {
    const dir = join(tmp, 'run');
    const r = trainJs(...TINY, '--max_steps', '30', '--eval_steps', '15', '--ckpt_root', dir);
    assert.is(r.status, 0, r.stderr);
    const losses = log(dir)
      .filter((e) => e.type === 'train')
      .map((e) => e.loss);
    assert.is(losses.length, 30);
    /** @param {number[]} xs */
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(
      mean(losses.slice(-5)) < 0.8 * mean(losses.slice(0, 5)),
      `loss did not fall: ${losses.map((l) => l.toFixed(1)).join(' ')}`,
    );
    const evals = log(dir).filter((e) => e.type === 'eval');
    assert.equal(
      evals.map((e) => e.step),
      [15, 30],
    );
    assert.ok(evals.every((e) => e.psnr > 5 && e.ssim > 0));
    for (const f of ['last.safetensors', 'best.safetensors', 'plot.svg', 'sheet.png'])
      assert.ok(existsSync(join(dir, f)), `${f} missing`);
    assert.match(readFileSync(join(dir, 'plot.svg'), 'utf8'), /<polyline/);
    const model = loadSisn(ctx.gpu, join(dir, 'last.safetensors'));
    assert.equal(model.config, { scale: 4, groups: 1, blocks: 1, channels: 8 });
    model.dispose();
  },
);

test('--resume continues exactly with no option repeated: the same loss curve as an uninterrupted run', () => {
  const a = join(tmp, 'straight');
  const b = join(tmp, 'resumed');
  assert.is(trainJs(...TINY, '--max_steps', '12', '--eval_steps', '4', '--ckpt_root', a).status, 0);
  assert.is(trainJs(...TINY, '--max_steps', '8', '--eval_steps', '4', '--ckpt_root', b).status, 0);
  // Every option (data, lr, batch, patch, schedule) comes back from the checkpoint; only the new
  // end is given, and printed as a change.
  const r = trainJs('--ckpt_root', b, '--resume', '--max_steps', '12');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming from .* at step 8/);
  assert.match(r.stderr, /max_steps: 12 \(checkpoint: 8\)/);
  assert.not.match(r.stderr, /lr: /, 'an option that was not given was reported as changed');
  /** @param {LogEntry[]} entries */
  const strip = (entries) => entries.map(({ seconds, ...rest }) => rest);
  assert.equal(strip(log(b)), strip(log(a)));
});

test("the shipped checkpoints resume with their last phase's options (the model card's statement)", () => {
  for (const [name, step, lr, batch, patch, decay] of cases([
    ['x4', 10600, 1e-4, 16, 0, '8.6-9.8'],
    ['x8', 6000, 1e-4, 16, 0, '5.0-5.6'],
  ])) {
    const ckpt_root = join(root, 'weights/checkpoints', name);
    assert.throws(
      () => startOptions(TRAIN_DEFAULTS, { ckpt_root, resume: true }, () => {}),
      new RegExp(`is at step ${step} and --max_steps is ${step}: nothing to train`),
    );
    /** @type {string[]} */
    const changes = [];
    const o = startOptions(TRAIN_DEFAULTS, { ckpt_root, resume: true, max_steps: step + 500 }, (m) => changes.push(m));
    assert.equal(changes, [`max_steps: ${step + 500} (checkpoint: ${step})`]);
    assert.equal(
      [o.lr, o.batch_size, o.patch_size, o.decay, o.hr_crop, o.train_val_range, o.eval_steps],
      [lr, batch, patch, decay, '88x104', '1-9000/9001-9500', 500],
    );
    assert.is(o.ckpt_root, ckpt_root);
  }
});

test('a fresh run into a folder holding a run is refused unless --overwrite; --resume checks its options', () => {
  const dir = join(tmp, 'resumed');
  const before = ['last.safetensors', 'best.safetensors', 'log.jsonl'].map((f) => readFileSync(join(dir, f)));
  let r = trainJs(...TINY, '--max_steps', '2', '--ckpt_root', dir);
  assert.is(r.status, 1);
  assert.match(
    r.stderr,
    joinPatterns(
      /--ckpt_root .*resumed already holds a training run /,
      /\(last\.safetensors, best\.safetensors, log\.jsonl, plot\.svg, sheet\.png\): /,
      /continue it with --resume, or replace it with --overwrite/,
    ),
  );
  const unchanged = () =>
    ['last.safetensors', 'best.safetensors', 'log.jsonl'].forEach((f, i) =>
      assert.ok(readFileSync(join(dir, f)).equals(before[i]), `${f} changed`),
    );
  unchanged();
  r = trainJs('--ckpt_root', dir, '--resume', '--max_steps', '4');
  assert.is(r.status, 1);
  assert.match(
    r.stderr,
    /--resume: .*last\.safetensors is at step 12 and --max_steps is 4: nothing to train; give a --max_steps above 12/,
  );
  r = trainJs('--ckpt_root', dir, '--resume');
  assert.is(r.status, 1, 'a finished run resumed with its own --max_steps has nothing to do');
  assert.match(r.stderr, /is at step 12 and --max_steps is 12/);
  r = trainJs('--ckpt_root', dir, '--resume', '--max_steps', '20', '--num_channels', '16');
  assert.is(r.status, 1);
  assert.match(r.stderr, /the checkpoint was trained with --num_channels 8; a resumed run cannot change it/);
  r = trainJs('--ckpt_root', dir, '--resume', '--overwrite');
  assert.is(r.status, 1);
  assert.match(r.stderr, /give one of them/);
  unchanged();
  r = trainJs(...TINY, '--max_steps', '2', '--eval_steps', '2', '--ckpt_root', dir, '--overwrite');
  assert.is(r.status, 0, r.stderr);
  assert.equal(
    log(dir).map((e) => `${e.type}${e.step}`),
    ['train1', 'train2', 'eval2'],
  );
  assert.ok(!readFileSync(join(dir, 'last.safetensors')).equals(before[0]), 'the old checkpoint was kept');
});

test('a training run killed with SIGKILL leaves a loadable checkpoint', async () => {
  const dir = join(tmp, 'killed');
  const child = spawn(
    process.execPath,
    [join(root, 'train.js'), ...TINY, '--max_steps', '100000', '--eval_steps', '2', '--ckpt_root', dir],
    { stdio: 'ignore' },
  );
  const last = join(dir, 'last.safetensors');
  const deadline = Date.now() + 120000;
  while (!existsSync(last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 700)); // let it write a few more checkpoints, then kill mid-run
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  assert.ok(existsSync(last), 'no checkpoint was written');
  const ck = loadCheckpoint(ctx.gpu, last);
  assert.ok(ck.meta.step >= 2 && ck.meta.step % 2 === 0);
  ck.model.dispose();
});

test('a non-finite loss stops training with a clear message and keeps the last good checkpoint', () => {
  const dir = join(tmp, 'nan');
  const r = trainJs(...TINY, '--lr', '1e6', '--max_steps', '20', '--eval_steps', '1', '--ckpt_root', dir);
  assert.is(r.status, 1);
  assert.match(
    r.stderr,
    joinPatterns(
      /the loss became (NaN|Infinity|-Infinity) at step \d+; training stopped\. /,
      /The last good checkpoint is .*last\.safetensors/,
    ),
  );
  const ck = loadCheckpoint(ctx.gpu, join(dir, 'last.safetensors'));
  ck.model.dispose();
});

test('bad data gets a clear message naming the file', () => {
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  let r = trainJs('--dataset_root', empty, '--ckpt_root', join(tmp, 'x'));
  assert.is(r.status, 1);
  assert.match(r.stderr, /no PNG or JPEG images found in .*empty/);
  const corrupt = join(tmp, 'corrupt');
  mkdirSync(corrupt);
  for (const f of ['009501.jpg', '009502.jpg']) copyFileSync(join(faces, f), join(corrupt, f));
  writeFileSync(join(corrupt, '009503.jpg'), readFileSync(join(faces, '009503.jpg')).subarray(0, 300));
  r = trainJs('--dataset_root', corrupt, '--train_val_range', '1-2/3-3', '--ckpt_root', join(tmp, 'x'));
  assert.is(r.status, 1);
  assert.match(r.stderr, /009503\.jpg: cannot decode image/);
  // One image smaller than the patch among larger ones.
  const mixed = join(tmp, 'mixed');
  mkdirSync(mixed);
  for (const f of ['009501.jpg', '009502.jpg', '009503.jpg']) copyFileSync(join(faces, f), join(mixed, f));
  writeFileSync(
    join(mixed, 'tiny.png'),
    encodePng({ width: 40, height: 40, channels: 3, data: new Uint8Array(40 * 40 * 3).fill(90) }),
  );
  r = trainJs(
    '--dataset_root',
    mixed,
    '--train_val_range',
    '1-4/1-1',
    '--patch_size',
    '20',
    '--ckpt_root',
    join(tmp, 'x'),
    '--max_steps',
    '1',
  );
  assert.is(r.status, 1);
  assert.match(r.stderr, /tiny\.png is 10x10 at LR, smaller than --patch_size 20/);
  r = trainJs('--dataset_root', faces, '--train_val_range', '1-6/7-20', '--ckpt_root', join(tmp, 'x'));
  assert.is(r.status, 1);
  assert.match(r.stderr, /ends past the 8 images found/);
  r = trainJs('--dataset_root', faces, '--batch_size', 'ten');
  assert.is(r.status, 1);
  assert.match(r.stderr, /--batch_size must be a number/);
});

test('patches keep LR and HR aligned under every flip and rotation', () => {
  // HR is the nearest upsampling of a random LR image, so every HR patch must be the nearest
  // upsampling of its LR patch, whatever the augmentation.
  const s = 2;
  const lw = 6;
  const lh = 6;
  const rng = new Rng(3);
  const lr = Uint8Array.from({ length: lw * lh * 3 }, () => rng.int(256));
  const hr = new Uint8Array(lw * s * lh * s * 3);
  for (let y = 0; y < lh * s; y++)
    for (let x = 0; x < lw * s; x++)
      for (let c = 0; c < 3; c++)
        hr[(y * lw * s + x) * 3 + c] = lr[(Math.floor(y / s) * lw + Math.floor(x / s)) * 3 + c];
  const pair = { name: 'synthetic', lr, hr, lrWidth: lw, lrHeight: lh, hrWidth: lw * s, hrHeight: lh * s };
  const sampler = new PatchSampler([pair], s, 16, 4);
  const seen = new Set();
  for (let i = 0; i < 8; i++) {
    const batch = sampler.next(rng);
    const [B, , p] = batch.lrShape;
    for (let b = 0; b < B; b++) {
      seen.add(batch.lr.subarray(b * 3 * p * p, b * 3 * p * p + 4).join(','));
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < p * s; y++)
          for (let x = 0; x < p * s; x++) {
            const h = batch.hr[((b * 3 + c) * p * s + y) * p * s + x];
            const l = batch.lr[((b * 3 + c) * p + Math.floor(y / s)) * p + Math.floor(x / s)];
            if (h !== l) assert.unreachable(`sample ${b}: HR (${y},${x}) = ${h}, LR = ${l}`);
          }
    }
  }
  assert.ok(seen.size > 20, 'patches do not vary');
});

test('sisn eval prints SISN and bicubic PSNR/SSIM and writes JSON', () => {
  const weights = join(tmp, 'run', 'last.safetensors');
  const json = join(tmp, 'eval.json');
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'dist/cli/bin.js'),
      'eval',
      '--weights',
      weights,
      '--dataset_root',
      faces,
      '--range',
      '7-8',
      '--hr_crop',
      '88x104',
      '--json',
      json,
    ],
    { encoding: 'utf8', timeout: 120000 },
  );
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /bicubic\s+\d+\.\d+/);
  assert.match(r.stdout, /SISN\s+\d+\.\d+/);
  const out =
    /** @type {{ count: number, border: number, bicubic: { psnr: number, ssim: number }, images: unknown[] }} */ (
      readJson(json)
    );
  assert.is(out.count, 2);
  assert.is(out.border, 10);
  assert.ok(out.bicubic.psnr > 20 && out.bicubic.ssim > 0.5, 'bicubic baseline implausible');
  assert.is(out.images.length, 2);
});

test.run();
