/**
 * The browser host: `navigator.gpu`, shaders embedded by the web build (the `sisn:shaders` module
 * that scripts/build-web.mjs generates from `shaders/`), no file system. pngjs's browser build
 * carries its own zlib and expects the `buffer` package's Buffer.
 */
import shaders from 'sisn:shaders';
import pngjs from 'pngjs/browser.js';
import { Buffer } from 'buffer';
import { pngjsCodec } from './png.js';
import type { Platform } from './types.js';

function noFiles(what: string): never {
  throw new Error(`${what}: a browser has no file system; pass the bytes instead (e.g. from fetch or a file input)`);
}

function navigatorGpu(): GPU {
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    throw new Error(
      'this browser has no WebGPU (navigator.gpu is missing): use a current Chrome or Edge, Safari 26 or Firefox ' +
        '141 on Windows, over https or localhost',
    );
  }
  return navigator.gpu;
}

export const platform: Platform = {
  // A browser offers one adapter per request and no way to list or name them.
  adapterHost: { create: navigatorGpu, revealDrivers() {}, compatibilityFlags: [] },
  env: {},
  pollsWhileWaiting: false,
  noAdapterHelp:
    'the browser offers WebGPU but no adapter: update the GPU driver, or check chrome://gpu (is WebGPU blocklisted?)',
  // Browsers define GPUBufferUsage and the other constants themselves.
  webgpuGlobals: {},
  readShader: (family) => shaders[family] ?? null,
  readInclude: (name) => shaders[`include/${name}`] ?? null,
  shaderFamilies: () => Object.keys(shaders).filter((name) => !name.startsWith('include/')),
  readFile: (path) => noFiles(`cannot read ${path}`),
  writeFileAtomic: (path) => noFiles(`cannot write ${path}`),
  inflateRaw: () => {
    throw new Error(
      'deflated zip entries are read in Node only: convert the weights to safetensors (or save them uncompressed, ' +
        'as torch.save does)',
    );
  },
  png: pngjsCodec(pngjs, (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
  // Nothing outlives the page: tuned kernel choices last as long as the engine.
  cacheFile: () => null,
};
