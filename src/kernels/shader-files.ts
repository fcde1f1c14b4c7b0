/**
 * The kernel sources: `shaders/<family>.wgsl`, and `shaders/include/<name>.wgsl` for helpers that
 * WGSL has no import for. The one module that reads them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The source of shaders/<family>.wgsl, or null when there is no such file. */
export function readShader(family: string): string | null {
  return readOrNull(join(SHADER_DIR, `${family}.wgsl`));
}

/** The source of shaders/include/<name>.wgsl, or null when there is no such file. */
export function readInclude(name: string): string | null {
  return readOrNull(join(SHADER_DIR, 'include', `${name}.wgsl`));
}

/** The kernel families in shaders/ (file names without `.wgsl`). */
export function shaderFamilies(): string[] {
  return readdirSync(SHADER_DIR).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5));
}
