#!/usr/bin/env node
// `node train.js [options]` trains SISN (see `node train.js --help`); the same as `sisn train`.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
if (!existsSync(new URL('./dist/cli/main.js', import.meta.url))) {
  console.error('train.js: building (npx tsc -p .) ...');
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', root], { stdio: 'inherit' });
}
const { withoutDawnWarnings } = await import('./dist/cli/quiet-dawn.js');
process.exitCode = await withoutDawnWarnings(async () =>
  (await import('./dist/cli/main.js')).main(['train', ...process.argv.slice(2)]),
);
