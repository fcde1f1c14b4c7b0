/** Reading files, with errors that name the file. */
import { platform } from '../platform/index.js';
import { fsProblem } from './fs-messages.js';

/** The bytes of `path`; a failure reads `cannot read <what> <path>: <reason>`. */
export function readBytes(path: string, what = ''): Uint8Array {
  try {
    return platform.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${what ? `${what} ` : ''}${path}: ${fsProblem(e)}`, { cause: e });
  }
}
