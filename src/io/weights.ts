/** State dicts on disk: read from safetensors or a PyTorch checkpoint, DataParallel prefixes stripped. */
import { platform } from '../platform/index.js';
import { parseSafetensors, type StateDict } from './safetensors.js';
import { readTorchCheckpoint } from './torch.js';

/** Strips the `module.` prefix that nn.DataParallel checkpoints put on every key. */
export function stripModulePrefix(dict: StateDict): StateDict {
  const keys = [...dict.keys()];
  if (!keys.length || !keys.every((k) => k.startsWith('module.'))) return dict;
  return new Map(keys.map((k) => [k.slice('module.'.length), dict.get(k)!]));
}

/** Reads a state_dict from safetensors, or from a PyTorch `.pt`/`.pth` checkpoint (zip). */
export function readStateDict(path: string): StateDict {
  if (/\.(pt|pth|ckpt)$/i.test(path)) return readTorchCheckpoint(path);
  let bytes: Uint8Array;
  try {
    bytes = platform.readFile(path);
  } catch (e) {
    throw new Error(`cannot read weights ${path}: ${(e as Error).message}`);
  }
  return parseSafetensors(bytes, path).tensors;
}

/** Training checkpoints also carry the optimiser's state, under `optimizer.` keys. */
export const OPTIMIZER_PREFIX = 'optimizer.';
