#!/usr/bin/env node
// `npm run web`: builds the web app (scripts/build-web.mjs) and serves it on 127.0.0.1.
//   --port N (or env PORT; default 8080)   --out DIR (default dist-web/)
import { parseArgs } from 'node:util';
import { buildWeb } from './build-web.mjs';
import { serveStatic } from './serve-static.mjs';

const { values } = parseArgs({ options: { port: { type: 'string' }, out: { type: 'string' } } });
const port = Number(values.port ?? process.env.PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`web: bad port ${values.port ?? process.env.PORT}`);
  process.exit(2);
}
const { outDir, bundleBytes } = await buildWeb(values.out);
console.log(`built ${outDir} (sisn-webgpu.js: ${(bundleBytes / 1024).toFixed(0)} KiB)`);
const { url } = await serveStatic(outDir, port);
console.log(`serving the SISN web app at ${url} (Ctrl-C to stop)`);
