/** SISN weights: build a model from a state_dict (config inferred from names and shapes), save one. */
import type { Gpu } from '../engine.js';
import { SISN, type SisnConfig } from './sisn.js';
import { serializeSafetensors, type StateDict } from '../io/safetensors.js';
import { platform } from '../platform/index.js';
import { readStateDict, stripModulePrefix, OPTIMIZER_PREFIX } from '../io/weights.js';
import { assertFinite, parseStateDict } from '../io/state-dict.js';

/** A few of the names found, for messages about what a file holds. */
function foundNames(dict: StateDict): string {
  const keys = [...dict.keys()];
  return (
    `found ${keys.length} ` +
    `tensor(s)${keys.length ? `: ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', ...' : ''}` : ''}`
  );
}

/** 1 + the largest index N among names matching `pattern` (whose group 1 is N), 0 if none. */
function countIndexed(dict: StateDict, pattern: RegExp): number {
  let n = 0;
  for (const k of dict.keys()) {
    const m = pattern.exec(k);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** Reads scale, G, I and C from the tensor names and shapes. */
export function inferConfig(dict: StateDict): SisnConfig {
  const head = dict.get('head.1.weight');
  if (!head)
    throw new Error(
      `not a SISN state_dict: tensor head.1.weight [C, 3*s*s, 3, 3], which gives the scale and width, is missing ` +
        `(${foundNames(dict)})`,
    );
  if (head.shape.length !== 4)
    throw new Error(`head.1.weight has shape ${JSON.stringify(head.shape)}, expected [C, 3*s*s, 3, 3]`);
  const channels = head.shape[0];
  const scale = Math.round(Math.sqrt(head.shape[1] / 3));
  if (![2, 3, 4, 8].includes(scale) || 3 * scale * scale !== head.shape[1])
    throw new Error(`head.1.weight has ${head.shape[1]} input channels: not 3*s*s for s in 2, 3, 4, 8`);
  // Counted from every tensor of a group or block, so one missing tensor is reported by name.
  const groups = countIndexed(dict, /^body\.(\d+)\.IA\./);
  const blocks = countIndexed(dict, /^body\.\d+\.body\.(\d+)\.[^.]+\./);
  if (!groups || !blocks)
    throw new Error(`not a SISN state_dict: no body.N.IA groups or body.N.body.M blocks (${foundNames(dict)})`);
  return { scale: scale as SisnConfig['scale'], groups, blocks, channels };
}

/** Copies a state_dict into the model; every tensor must be present with its exact shape. */
export function loadStateDict(model: SISN, input: StateDict): void {
  const dict = stripModulePrefix(input);
  const expected = new Set(model.entries.map((e) => e.name));
  const unexpected = [...dict.keys()].filter((k) => !expected.has(k));
  if (unexpected.length)
    throw new Error(
      `unexpected tensor(s) for SISN ${JSON.stringify(model.config)}: ` +
        `${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}`,
    );
  const missing = model.entries.filter((e) => !dict.has(e.name)).map((e) => `${e.name} ${JSON.stringify(e.shape)}`);
  if (missing.length)
    throw new Error(
      `missing ${missing.length} of the ${model.entries.length} tensors of SISN ${JSON.stringify(model.config)}: ` +
        `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
    );
  for (const e of model.entries) {
    const t = dict.get(e.name)!;
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i]))
      throw new Error(`tensor ${e.name} has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(e.shape)}`);
    const wantDtype = e.kind === 'counter' ? 'I64' : 'F32';
    if (t.dtype !== wantDtype) throw new Error(`tensor ${e.name} is ${t.dtype}, expected ${wantDtype}`);
    assertFinite(e.name, t.data);
  }
  // Validated in full before anything is written: no partial loads.
  for (const e of model.entries) {
    const t = dict.get(e.name)!;
    if (e.kind === 'param') model.params.set(e.name, t.data as Float32Array);
    else if (e.kind === 'buffer') model.buffers.get(e.name)!.write(t.data as Float32Array);
    else model.counters.set(e.name, (t.data as number[])[0]);
  }
}

/**
 * Builds a SISN, config inferred, from a weights file or its bytes (safetensors, a PyTorch zip
 * checkpoint, or a training checkpoint); bytes (e.g. fetched in a browser) are called `name` in errors.
 */
export function loadSisn(gpu: Gpu, source: string | Uint8Array, name = 'weights'): SISN {
  const path = typeof source === 'string' ? source : name;
  const state = typeof source === 'string' ? readStateDict(source) : parseStateDict(source, name);
  return sisnFromStateDict(
    gpu,
    new Map([...stripModulePrefix(state)].filter(([k]) => !k.startsWith(OPTIMIZER_PREFIX))),
    path,
  );
}

/** A SISN of the config `dict` implies, holding its values; errors name `path`, a failed load disposes the model. */
export function sisnFromStateDict(gpu: Gpu, dict: StateDict, path: string): SISN {
  let config: SisnConfig;
  try {
    config = inferConfig(dict);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
  const model = new SISN(gpu, config);
  try {
    loadStateDict(model, dict);
  } catch (e) {
    model.dispose();
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
  return model;
}

/** Reads every state_dict tensor back from the GPU, in PyTorch's order. */
export async function stateDict(model: SISN): Promise<StateDict> {
  const out: StateDict = new Map();
  for (const e of model.entries) {
    if (e.kind === 'counter') out.set(e.name, { dtype: 'I64', shape: [], data: [model.counters.get(e.name) ?? 0] });
    else {
      const t = e.kind === 'param' ? model.params.get(e.name) : model.buffers.get(e.name)!;
      out.set(e.name, { dtype: 'F32', shape: [...e.shape], data: await t.read() });
    }
  }
  return out;
}

/** Writes the model as safetensors atomically (temporary file, then rename). */
export async function saveSisn(model: SISN, path: string, metadata: Record<string, string> = {}): Promise<void> {
  const dict = await stateDict(model);
  const bytes = serializeSafetensors(dict, {
    format: 'pt',
    arch: 'SISN',
    config: JSON.stringify(model.config),
    ...metadata,
  });
  platform.writeFileAtomic(path, bytes);
}
