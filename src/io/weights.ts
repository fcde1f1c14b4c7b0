/** State dicts on disk: read from safetensors or a PyTorch checkpoint, DataParallel prefixes stripped. */
import { readBytes } from './files.js';
import type { StateDict } from './safetensors.js';
import { parseStateDict } from './state-dict.js';

/** Strips the `module.` prefix that nn.DataParallel checkpoints put on every key. */
export function stripModulePrefix(dict: StateDict): StateDict {
  const keys = [...dict.keys()];
  if (!keys.length || !keys.every((k) => k.startsWith('module.'))) return dict;
  return new Map(keys.map((k) => [k.slice('module.'.length), dict.get(k)!]));
}

/** Reads a state_dict from safetensors or a PyTorch zip checkpoint, told apart by their bytes. */
export function readStateDict(path: string): StateDict {
  return parseStateDict(readBytes(path, 'weights'), path);
}

/** Training checkpoints also carry the optimiser's state, under `optimizer.` keys. */
export const OPTIMIZER_PREFIX = 'optimizer.';
