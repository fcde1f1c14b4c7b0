/**
 * Training checkpoints: one safetensors file with the model's state_dict, Adam's moments
 * (`optimizer.exp_avg`, `optimizer.exp_avg_sq`, in the parameter arena's layout) and, in the
 * metadata, the step, RNG state, config, options and best score. Written atomically (temporary
 * file, then rename), so a crash leaves the previous checkpoint intact. `loadSisn` reads the model
 * from it like any weights file.
 */
import { platform } from '../platform/index.js';
import type { Gpu } from '../engine.js';
import type { SISN, SisnConfig } from '../nn/sisn.js';
import type { Adam } from '../optim/adam.js';
import { parseSafetensors, serializeSafetensors, type SafeFile } from '../io/safetensors.js';
import { assertFinite } from '../io/state-dict.js';
import { stateDict, sisnFromStateDict } from '../nn/sisn-weights.js';
import { OPTIMIZER_PREFIX } from '../io/weights.js';
import { fsProblem } from '../io/fs-messages.js';
import { readBytes } from '../io/files.js';

export const CHECKPOINT_FORMAT = 'sisn-webgpu-checkpoint/1';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  step: number;
  config: SisnConfig;
  rng: number[];
  adamStep: number;
  bestPsnr: number;
  bestStep: number;
  options: Record<string, unknown>;
}

export async function saveCheckpoint(
  path: string,
  model: SISN,
  adam: Adam,
  meta: Omit<CheckpointMeta, 'format' | 'config' | 'adamStep'>,
): Promise<void> {
  const dict = await stateDict(model);
  dict.set(`${OPTIMIZER_PREFIX}exp_avg`, { dtype: 'F32', shape: [adam.params.length], data: await adam.expAvg.read() });
  dict.set(`${OPTIMIZER_PREFIX}exp_avg_sq`, {
    dtype: 'F32',
    shape: [adam.params.length],
    data: await adam.expAvgSq.read(),
  });
  const full: CheckpointMeta = { format: CHECKPOINT_FORMAT, config: model.config, adamStep: adam.step, ...meta };
  const bytes = serializeSafetensors(dict, {
    format: 'pt',
    arch: 'SISN',
    config: JSON.stringify(model.config),
    checkpoint: JSON.stringify(full),
  });
  try {
    platform.writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`cannot write checkpoint ${path}: ${fsProblem(e)}`, { cause: e });
  }
}

export interface LoadedCheckpoint {
  model: SISN;
  meta: CheckpointMeta;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

function readCheckpointFile(path: string): { file: SafeFile; meta: CheckpointMeta } {
  const bytes = readBytes(path, 'checkpoint');
  let file;
  try {
    file = parseSafetensors(bytes, path);
  } catch (e) {
    throw new Error(`cannot load checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!file.metadata.checkpoint)
    throw new Error(`${path} holds weights only, not a training checkpoint (no optimizer state)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(file.metadata.checkpoint) as CheckpointMeta;
  } catch (e) {
    throw new Error(`${path}: the checkpoint metadata is not JSON (${(e as Error).message})`, { cause: e });
  }
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: unknown checkpoint format ${String(meta.format)}`);
  return { file, meta };
}

/** The step, options and state of a training checkpoint, without building the model. */
export function readCheckpointMeta(path: string): CheckpointMeta {
  return readCheckpointFile(path).meta;
}

export function loadCheckpoint(gpu: Gpu, path: string): LoadedCheckpoint {
  const { file, meta } = readCheckpointFile(path);
  const expAvg = file.tensors.get(`${OPTIMIZER_PREFIX}exp_avg`)?.data;
  const expAvgSq = file.tensors.get(`${OPTIMIZER_PREFIX}exp_avg_sq`)?.data;
  if (!(expAvg instanceof Float32Array) || !(expAvgSq instanceof Float32Array))
    throw new Error(`${path}: optimizer state missing`);
  try {
    assertFinite(`${OPTIMIZER_PREFIX}exp_avg`, expAvg);
    assertFinite(`${OPTIMIZER_PREFIX}exp_avg_sq`, expAvgSq);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
  const model = sisnFromStateDict(
    gpu,
    new Map([...file.tensors].filter(([k]) => !k.startsWith(OPTIMIZER_PREFIX))),
    path,
  );
  return { model, meta, expAvg, expAvgSq };
}
