// What users see: every failure names the file and what is wrong with it and leaves nothing
// behind; no Dawn warnings; progress on stderr for tiled upscales.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encodePng } from '../dist/index.js';
import { Progress } from '../dist/train/progress.js';
import { DawnWarningFilter } from '../dist/cli/quiet-dawn.js';
import { joinPatterns } from './helpers.js';

const test = suite('messages');
const root = fileURLToPath(new URL('..', import.meta.url));
const weights = join(root, 'test/fixtures/sisn-small/weights.safetensors');
const faces = join(root, 'test/fixtures/faces');
const tmp = mkdtempSync(join(tmpdir(), 'sisn-messages-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// Without the runner's colour settings: Node warns on stderr when NO_COLOR and FORCE_COLOR meet.
const env = { ...process.env };
delete env.NO_COLOR;
delete env.FORCE_COLOR;
/** @type {(script: string, ...args: string[]) => import('node:child_process').SpawnSyncReturns<string>} */
const run = (script, ...args) =>
  spawnSync(process.execPath, [join(root, script), ...args], { encoding: 'utf8', timeout: 120000, env });
/** @param {string[]} args */
const sisn = (...args) => run('dist/cli/bin.js', ...args);
/** @param {string[]} args */
const trainJs = (...args) => run('train.js', ...args);
const DAWN_WARNING =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset ' +
  'allocation limit.\n';
/** The project's own messages only: no Dawn warnings, no raw system error codes. */
/** @param {import('node:child_process').SpawnSyncReturns<string>} r */
const ownMessages = (r) => {
  assert.not.match(r.stderr, /artificially reduced/);
  assert.not.match(r.stderr, /EEXIST|ENOTDIR|EISDIR|ENOENT/);
};

const small = join(tmp, 'small.png');
writeFileSync(
  small,
  encodePng({
    width: 40,
    height: 40,
    channels: 3,
    data: Uint8Array.from({ length: 40 * 40 * 3 }, (_, i) => (i * 37) % 256),
  }),
);
const aFile = join(tmp, 'a-file');
writeFileSync(aFile, 'not a folder');

test(
  'sisn upscale: a truncated image, an output below a file, a missing input: clear messages, no folders ' + 'left',
  () => {
    const truncated = join(tmp, 'truncated.png');
    writeFileSync(truncated, readFileSync(small).subarray(0, 100));
    let r = sisn('upscale', truncated, '-o', join(tmp, 'out1', 'x.png'), '--weights', weights);
    assert.is(r.status, 1);
    assert.match(
      r.stderr,
      /truncated\.png: cannot decode image: the PNG file is truncated: it ends at byte 100, inside its IDAT chunk/,
    );
    assert.ok(!existsSync(join(tmp, 'out1')), 'the output folder was created for a failed upscale');
    const jpeg = join(tmp, 'truncated.jpg');
    writeFileSync(jpeg, readFileSync(join(faces, '009501.jpg')).subarray(0, 1500));
    r = sisn('upscale', jpeg, '-o', join(tmp, 'out1', 'x.png'), '--weights', weights);
    assert.match(
      r.stderr,
      joinPatterns(
        /truncated\.jpg: cannot decode image: /,
        /the JPEG file is truncated: it ends at byte 1500 without an end-of-image marker/,
      ),
    );
    r = sisn('upscale', small, '-o', join(aFile, 'sub', 'x.png'), '--weights', weights);
    assert.is(r.status, 1);
    assert.match(r.stderr, /output folder .*a-file\/sub: .*a-file is a file, not a folder/);
    r = sisn('upscale', small, join(tmp, 'missing.png'), '-o', `${aFile}/`, '--weights', weights);
    assert.is(r.status, 1);
    assert.match(r.stderr, /output folder .*a-file\/: it is a file, not a folder/);
    ownMessages(r);
    r = sisn(
      'upscale',
      join(tmp, 'missing.png'),
      join(tmp, 'missing2.png'),
      '-o',
      join(tmp, 'out2'),
      '--weights',
      weights,
    );
    assert.is(r.status, 1);
    assert.match(r.stderr, /cannot read .*missing\.png: no such file or folder\n/);
    assert.ok(!existsSync(join(tmp, 'out2')), 'the output folder was created though no image was written');
    ownMessages(r);
  },
);

test(
  'training: a dataset that is a file, a --ckpt_root that is a file, bad data: clear messages, no folders ' + 'left',
  () => {
    let r = trainJs('--dataset_root', aFile, '--ckpt_root', join(tmp, 'ck1'));
    assert.is(r.status, 1);
    assert.match(r.stderr, /dataset folder .*a-file is a file, not a folder/);
    r = trainJs('--dataset_root', join(tmp, 'nowhere'), '--ckpt_root', join(tmp, 'ck1'));
    assert.match(r.stderr, /dataset folder .*nowhere does not exist/);
    r = trainJs('--dataset_root', faces, '--ckpt_root', aFile);
    assert.is(r.status, 1);
    assert.match(r.stderr, /--ckpt_root .*a-file: it is a file, not a folder/);
    ownMessages(r);
    const corrupt = join(tmp, 'corrupt');
    mkdirSync(corrupt);
    for (const f of ['009501.jpg', '009502.jpg']) copyFileSync(join(faces, f), join(corrupt, f));
    writeFileSync(join(corrupt, '009503.png'), readFileSync(small).subarray(0, 60));
    r = trainJs('--dataset_root', corrupt, '--train_val_range', '1-2/3-3', '--ckpt_root', join(tmp, 'ck1'));
    assert.is(r.status, 1);
    assert.match(r.stderr, /009503\.png: cannot decode image: the PNG file is truncated/);
    ownMessages(r);
    assert.ok(!existsSync(join(tmp, 'ck1')), 'a failed start left its checkpoint folder behind');
  },
);

test('sisn upscale shows tiles done and time left on a terminal; --quiet silences it', () => {
  /** @param {string[]} args */
  const script = (args) =>
    spawnSync(
      'script',
      ['-qec', [process.execPath, join(root, 'dist/cli/bin.js'), ...args].map((a) => `'${a}'`).join(' '), '/dev/null'],
      { encoding: 'utf8', timeout: 120000 },
    );
  let r = script(['upscale', small, '-o', join(tmp, 'tiled.png'), '--weights', weights, '--tile', '16']);
  assert.is(r.status, 0, r.stdout);
  assert.match(r.stdout, /\r\[#+\] tile 16\/16 .* ETA 0s/);
  assert.match(r.stdout, /\r\[[#.]+\] tile 1\/16 /);
  assert.not.match(r.stdout, /artificially reduced/);
  r = script(['upscale', small, '-o', join(tmp, 'tiled.png'), '--weights', weights, '--tile', '16', '--quiet']);
  assert.is(r.status, 0, r.stdout);
  assert.not.match(r.stdout, /tile \d/);
  assert.match(r.stdout, /small\.png \(40x40\) -> /);
});

test('progress off a terminal: a plain line now and then, the last one at the end', () => {
  /** @type {string[]} */
  const lines = [];
  const stream = { isTTY: false, write: (/** @type {string} */ s) => lines.push(s) };
  const p = new Progress(3, 0, { unit: 'tile', stream, plainEveryMs: 0 });
  for (let i = 1; i <= 3; i++) p.update(i);
  assert.is(lines.length, 3);
  assert.match(lines[2], /^tile 3\/3 .* ETA 0s\n$/);
  /** @type {string[]} */
  const quiet = [];
  const slow = new Progress(3, 0, {
    unit: 'tile',
    stream: { isTTY: false, write: (/** @type {string} */ s) => quiet.push(s) },
    plainFirst: false,
  });
  for (let i = 1; i <= 3; i++) slow.update(i);
  assert.is(quiet.length, 0, 'short work printed lines');
});

test(
  "Dawn's limit warnings are filtered out of stderr, even split across chunks; everything else passes at " + 'once',
  () => {
    const f = new DawnWarningFilter();
    let out = f.push(`adapter: lavapipe\n${DAWN_WARNING.slice(0, 30)}`);
    assert.is(out, 'adapter: lavapipe\n');
    out += f.push(`${DAWN_WARNING.slice(30)}${DAWN_WARNING.replace('Uniform', 'Storage')}\r[##..] tile 1/4`);
    assert.is(out, 'adapter: lavapipe\n\r[##..] tile 1/4', 'a progress bar without newline was held back');
    out += f.push('\nWarning: something else\n');
    out += f.end();
    assert.is(out, 'adapter: lavapipe\n\r[##..] tile 1/4\nWarning: something else\n');
    const r = sisn('upscale', small, '-o', join(tmp, 'plain.png'), '--weights', weights);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stderr, '', 'a successful upscale printed something on stderr');
  },
);

test.run();
