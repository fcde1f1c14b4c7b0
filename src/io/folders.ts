/** Folders the commands write into: checked before any work, created only when something is written. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsProblem } from './fs-messages.js';

/** Throws a clear error when `path` cannot be a folder: it, or a folder above it, is a file. */
export function checkFolderPath(path: string, what: string): void {
  const target = resolve(path);
  let p = target;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
  if (!statSync(p).isDirectory())
    throw new Error(`${what} ${path}: ${p === target ? 'it' : p} is a file, not a folder`);
}

/** Creates `path` (and the folders above it) after the same check, with a clear error on failure. */
export function makeFolder(path: string, what: string): void {
  checkFolderPath(path, what);
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create ${what} ${path}: ${fsProblem(e)}`, { cause: e });
  }
}
