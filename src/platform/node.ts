/** The Node host: Dawn's WebGPU (npm `webgpu`), shaders read from `shaders/`, node:fs and node:zlib. */
import { create, globals } from 'webgpu';
import { readFileSync, readdirSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';
import { pngjsCodec } from './png.js';
import type { Platform } from './types.js';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

export const platform: Platform = {
  gpu: () => create([]),
  noAdapterHelp: 'run `node scripts/ensure-adapter.mjs` (installs Mesa lavapipe on Debian as root) or install a Vulkan driver',
  webgpuGlobals: globals as Record<string, unknown>,
  shaderSource(name) {
    try {
      return readFileSync(join(SHADER_DIR, `${name}.wgsl`), 'utf8');
    } catch {
      return undefined;
    }
  },
  shaderNames: () => readdirSync(SHADER_DIR).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5)),
  readFile: (path) => readFileSync(path),
  writeFileAtomic(path, bytes) {
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, bytes);
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  },
  inflateRaw: (bytes) => new Uint8Array(inflateRawSync(bytes)),
  png: pngjsCodec(pngjs, (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
};
