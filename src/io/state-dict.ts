/**
 * State_dicts from bytes: the format is told by the file's content, never by its name, so a `.pt`
 * renamed `.safetensors` (or the reverse) still loads.
 */
import { parseSafetensors, type SafeTensor, type StateDict } from './safetensors.js';
import { isLegacyTorchSave, parseTorchCheckpoint, LEGACY_ADVICE } from './torch.js';

export type WeightsFormat = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'unknown';

export function detectWeightsFormat(bytes: Uint8Array): WeightsFormat {
  // 'PK\x03\x04' starts a zip's first entry; 'PK\x05\x06' is an empty archive's end record.
  if (
    bytes[0] === 0x50 &&
    bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6))
  )
    return 'torch-zip';
  if (isLegacyTorchSave(bytes)) return 'torch-legacy';
  // safetensors: a little-endian u64 header length (below 2^32 in any real file), then '{'.
  if (bytes.byteLength >= 9 && bytes[8] === 0x7b && bytes.subarray(4, 8).every((b) => b === 0)) return 'safetensors';
  return 'unknown';
}

/** Parses a safetensors file or a PyTorch zip checkpoint, whichever the bytes are. */
export function parseStateDict(bytes: Uint8Array, source: string): StateDict {
  switch (detectWeightsFormat(bytes)) {
    case 'safetensors':
      return parseSafetensors(bytes, source).tensors;
    case 'torch-zip':
      return parseTorchCheckpoint(bytes, source);
    case 'torch-legacy':
      throw new Error(`${source}: ${LEGACY_ADVICE}`);
    default: {
      const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
      throw new Error(
        `${source}: neither safetensors nor a PyTorch zip checkpoint (${bytes.byteLength} bytes, starting ` +
          `${head || 'with nothing'}); truncated or not a weights file`,
      );
    }
  }
}

/** Refuses a tensor holding NaN or +-Inf, naming it: such weights only ever produce black images. */
export function assertFinite(name: string, data: SafeTensor['data']): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]))
      throw new Error(
        `tensor ${name} holds ${data[i]} at element ${i}: the weights are corrupt (a diverged training run?)`,
      );
  }
}
