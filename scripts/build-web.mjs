#!/usr/bin/env node
// Builds the web app into a folder of static files (default dist-web/):
//   sisn-webgpu.js   the engine as one ES module (src/web.ts), WGSL embedded, for any page to import
//   index.html, app.js, app.css   the app (web/)
//   weights/         the shipped safetensors, and manifest.json naming them with a content hash
// The seam: src/platform/index.ts's import of ./node.js becomes ./browser.ts, and the
// `sisn:shaders` module is generated from shaders/ (kernel files and include/).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PLATFORM_INDEX = join(ROOT, 'src', 'platform', 'index.ts');
export const WEIGHTS = { 4: 'sisn-x4-celeba.safetensors', 8: 'sisn-x8-celeba.safetensors' };

function shaderSources() {
  const dir = join(ROOT, 'shaders');
  /** @type {Record<string, string>} */
  const sources = {};
  for (const sub of ['', 'include']) {
    for (const f of readdirSync(join(dir, sub))
      .filter((n) => n.endsWith('.wgsl'))
      .sort()) {
      sources[(sub ? `${sub}/` : '') + f.slice(0, -5)] = readFileSync(join(dir, sub, f), 'utf8');
    }
  }
  return sources;
}

/** @type {import('esbuild').Plugin} */
const browserPlatform = {
  name: 'sisn-browser-platform',
  setup(b) {
    b.onResolve({ filter: /^\.\/node\.js$/ }, (args) =>
      args.importer === PLATFORM_INDEX ? { path: join(ROOT, 'src', 'platform', 'browser.ts') } : undefined,
    );
    b.onResolve({ filter: /^sisn:shaders$/ }, () => ({ path: 'shaders', namespace: 'sisn-shaders' }));
    b.onLoad({ filter: /.*/, namespace: 'sisn-shaders' }, () => ({
      contents: `export default ${JSON.stringify(shaderSources())};`,
      loader: 'js',
    }));
  },
};

/** Builds into `outDir`; returns what it wrote, with the library bundle's size in bytes. */
export async function buildWeb(out = join(ROOT, 'dist-web')) {
  const outDir = resolve(out);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'weights'), { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'src', 'web.ts')],
    outfile: join(outDir, 'sisn-webgpu.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    legalComments: 'external',
    logLevel: 'warning',
    plugins: [browserPlatform],
  });
  for (const f of readdirSync(join(ROOT, 'web'))) copyFileSync(join(ROOT, 'web', f), join(outDir, f));
  /** @type {Record<string, { file: string, bytes: number, sha256: string }>} */
  const manifest = {};
  for (const [scale, file] of Object.entries(WEIGHTS)) {
    const bytes = readFileSync(join(ROOT, 'weights', file));
    copyFileSync(join(ROOT, 'weights', file), join(outDir, 'weights', file));
    manifest[scale] = { file, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  writeFileSync(join(outDir, 'weights', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { outDir, bundleBytes: statSync(join(outDir, 'sisn-webgpu.js')).size };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { outDir, bundleBytes } = await buildWeb(process.argv[2] && resolve(process.argv[2]));
  console.log(`built ${outDir} (sisn-webgpu.js: ${(bundleBytes / 1024).toFixed(0)} KiB)`);
}
