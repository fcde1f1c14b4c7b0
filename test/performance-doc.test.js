// docs/performance.md shows what bench/results.json holds: its results section is the one
// scripts/performance-doc.mjs generates from the JSON (run that script after `npm run bench`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  BEGIN,
  DOC,
  END,
  README,
  readResults,
  renderResults,
  renderSpeed,
  withResults,
  withSpeed,
} from '../scripts/performance-doc.mjs';

test('docs/performance.md: the results section is generated from bench/results.json', () => {
  const doc = readFileSync(DOC, 'utf8');
  assert.ok(doc.includes(BEGIN) && doc.includes(END), 'the generated section has its markers');
  assert.ok(
    withResults(doc, readResults()) === doc,
    'docs/performance.md does not show bench/results.json: run node scripts/performance-doc.mjs',
  );
});

test("README.md: the line on speed is generated from bench/results.json and gives each forward's spread", () => {
  const readme = readFileSync(README, 'utf8');
  assert.ok(
    withSpeed(readme, readResults()) === readme,
    'README.md does not show bench/results.json: run node scripts/performance-doc.mjs',
  );
  const results = readResults();
  const [e] = results.endToEnd;
  Object.assign(e, {
    runs: [571, 603, 640].map((ms) => ({ ms, pytorchMs: 190, ratio: ms / 190 })),
    vsPytorch: 603 / 190,
    vsPytorchRange: [571 / 190, 640 / 190],
  });
  const line = renderSpeed({ ...results, endToEnd: [e] });
  assert.ok(line.includes(`3.2x (3.0-3.4x over 3 runs) PyTorch CPU's time at ${e.name.replace('forward ', '')}`), line);
});

test('the generated section shows every end-to-end case and kernel of the JSON', () => {
  const results = readResults();
  const doc = readFileSync(DOC, 'utf8');
  const section = doc.slice(doc.indexOf(BEGIN), doc.indexOf(END));
  for (const { name } of [...results.endToEnd, ...results.kernels]) assert.ok(section.includes(name), name);
});

test('a forward with rounds shows the median and the range of its ms and of its ratio to PyTorch', () => {
  const results = readResults();
  const [e] = results.endToEnd;
  const ratios = [571 / 190, 603 / 200, 640 / 160];
  Object.assign(e, {
    ms: 603,
    runs: [571, 603, 640].map((ms, i) => ({ ms, pytorchMs: ms / ratios[i], ratio: ratios[i] })),
    pytorchMs: 190,
    vsPytorch: ratios[1],
    vsPytorchRange: [ratios[0], ratios[2]],
  });
  const row = renderResults(results)
    .split('\n')
    .find((line) => line.startsWith(`| ${e.name} `));
  assert.ok(row?.includes('| 603 (571-640) |'), row);
  assert.ok(row?.endsWith('| 3.0x (3.0-4.0x, 3 runs) |'), row);
  const { pytorchMs, vsPytorch, vsPytorchRange, ...engineOnly } = e;
  const noTorch = renderResults({ ...results, endToEnd: [{ ...engineOnly, runs: e.runs?.map(({ ms }) => ({ ms })) }] });
  assert.ok(noTorch.includes('| 603 (571-640) |'), 'without PyTorch, the ms range alone');
});

test.run();
