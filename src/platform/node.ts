/** The Node host: Dawn's WebGPU (npm `webgpu`), shaders read from `shaders/`, node:fs and node:zlib. */
import { globals } from 'webgpu';
import { readFileSync, readdirSync, writeFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { inflateRawSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';
import { dawnHost } from '../gpu/dawn.js';
import { pngjsCodec } from './png.js';
import type { Platform } from './types.js';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

/**
 * SISN_CACHE_DIR, else $XDG_CACHE_HOME/sisn-webgpu, else ~/.cache/sisn-webgpu (read at each call, so tests can point it
 * elsewhere).
 */
export function cacheDir(): string {
  return process.env.SISN_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sisn-webgpu');
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export const platform: Platform = {
  adapterHost: dawnHost,
  env: process.env,
  pollsWhileWaiting: true,
  noAdapterHelp:
    'run `node scripts/ensure-adapter.mjs` (installs Mesa lavapipe on Debian as root) or install a Vulkan driver',
  webgpuGlobals: globals as Record<string, unknown>,
  readShader: (family) => readOrNull(join(SHADER_DIR, `${family}.wgsl`)),
  readInclude: (name) => readOrNull(join(SHADER_DIR, 'include', `${name}.wgsl`)),
  shaderFamilies: () =>
    readdirSync(SHADER_DIR)
      .filter((f) => f.endsWith('.wgsl'))
      .map((f) => f.slice(0, -5)),
  readFile: (path) => readFileSync(path),
  writeFileAtomic,
  inflateRaw(bytes, maxBytes) {
    const out = inflateRawSync(bytes, { maxOutputLength: maxBytes });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  },
  png: pngjsCodec(pngjs, (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
  cacheFile(name) {
    const path = join(cacheDir(), name);
    return {
      path,
      read: () => readOrNull(path),
      write(text) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileAtomic(path, new TextEncoder().encode(text));
      },
    };
  },
};
