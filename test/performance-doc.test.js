// docs/performance.md shows what bench/results.json holds: its results section is the one
// scripts/performance-doc.mjs generates from the JSON (run that script after `npm run bench`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { BEGIN, DOC, END, readResults, withResults } from '../scripts/performance-doc.mjs';

test('docs/performance.md: the results section is generated from bench/results.json', () => {
  const doc = readFileSync(DOC, 'utf8');
  assert.ok(doc.includes(BEGIN) && doc.includes(END), 'the generated section has its markers');
  assert.ok(
    withResults(doc, readResults()) === doc,
    'docs/performance.md does not show bench/results.json: run node scripts/performance-doc.mjs',
  );
});

test('the generated section shows every end-to-end case and kernel of the JSON', () => {
  const results = readResults();
  const doc = readFileSync(DOC, 'utf8');
  const section = doc.slice(doc.indexOf(BEGIN), doc.indexOf(END));
  for (const { name } of [...results.endToEnd, ...results.kernels]) assert.ok(section.includes(name), name);
});

test.run();
