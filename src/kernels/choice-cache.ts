/**
 * The kernel choices file (`kernel-choices.json` in the user's cache folder, see platform): what the
 * tuner chose, kept per adapter so that another GPU, driver or engine setting never reuses it.
 *
 *   { "version": 1, "adapters": { ADAPTER: { "kernels": { KERNEL: { "source": HASH,
 *       "keys": { SHAPE: { "candidates": [...], "choice": NAME, "ms": { NAME: ms }, "pipelines": [...] } } } } } } }
 *
 * A kernel's entries hold while its shader source (as preprocessed for this device) hashes the
 * same, and a key's while the op offers the same candidates: a changed shader or variant list is
 * tuned again. The file is read once; a write re-reads it and replaces only this adapter's kernels
 * it tuned, so other adapters' entries (and other processes' writes) stay. A file that does not
 * parse is ignored with a warning, never an error.
 */
import type { CacheFile } from '../platform/index.js';
import type { Constants } from './reflect.js';

export const CHOICES_FILE = 'kernel-choices.json';

/** A pipeline a variant dispatches: compiled ahead of the first step by `KernelRegistry.prepare`. */
export interface PipelineId {
  name: string;
  constants?: Constants;
}

/** The tuned choice for one kernel and shape key. */
export interface Choice {
  candidates: string[];
  choice: string;
  /** GPU milliseconds of each candidate when they were timed. */
  ms: Record<string, number>;
  pipelines: PipelineId[];
}

interface KernelChoices {
  source: string;
  keys: Record<string, Choice>;
}

type AdapterChoices = Record<string, KernelChoices>;

/** A short hash of a shader's source (FNV-1a, twice over with different seeds: 64 bits as hex). */
export function sourceHash(text: string): string {
  const fnv = (seed: number) => {
    let h = seed >>> 0;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return h.toString(16).padStart(8, '0');
  };
  return fnv(0x811c9dc5) + fnv(0x050c5d1f);
}

/**
 * What the choices depend on besides the shaders: the adapter as its info names it (on Dawn's
 * Vulkan backend the description carries the driver and its version), its subgroup sizes, the
 * optional features the engine uses and the limits that bound a kernel's workgroup.
 */
export function adapterIdentity(
  info: GPUAdapterInfo,
  features: Record<string, boolean>,
  limits: GPUSupportedLimits,
): string {
  const name = [info.vendor, info.architecture, info.device, info.description].join(' / ');
  const used =
    Object.entries(features)
      .filter(([, on]) => on)
      .map(([k]) => k)
      .join(',') || 'none';
  const { maxComputeInvocationsPerWorkgroup: invocations, maxComputeWorkgroupStorageSize: shared } = limits;
  const subgroups = `${info.subgroupMinSize ?? 0}-${info.subgroupMaxSize ?? 0}`;
  return `${name} | subgroups ${subgroups} | features ${used} | ${invocations} invocations, ${shared} B shared`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The adapters of a file's text; throws (with the reason) when it is not a choices file. */
function parseChoices(text: string): Record<string, { kernels: AdapterChoices }> {
  const data: unknown = JSON.parse(text);
  if (!isObject(data) || data.version !== 1 || !isObject(data.adapters))
    throw new Error('not a version 1 kernel choices file');
  for (const [adapter, entry] of Object.entries(data.adapters)) {
    if (!isObject(entry) || !isObject(entry.kernels)) throw new Error(`adapter '${adapter}' has no kernels`);
  }
  return data.adapters as Record<string, { kernels: AdapterChoices }>;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class ChoiceCache {
  /** Keys set since the file was read, by kernel: what `save` writes. */
  private readonly changed = new Map<string, Set<string>>();

  private constructor(
    private readonly file: CacheFile | null,
    private readonly adapter: string,
    private readonly kernels: AdapterChoices,
    private readonly warn: (message: string) => void,
  ) {}

  /** This adapter's choices from `file` (none where there is no file, or it does not parse). */
  static open(file: CacheFile | null, adapter: string, warn: (message: string) => void): ChoiceCache {
    return new ChoiceCache(file, adapter, ChoiceCache.readAdapters(file, warn)[adapter]?.kernels ?? {}, warn);
  }

  private static readAdapters(
    file: CacheFile | null,
    warn: (message: string) => void,
  ): Record<string, { kernels: AdapterChoices }> {
    try {
      const text = file?.read() ?? null;
      return text === null ? {} : parseChoices(text);
    } catch (e) {
      warn(
        `ignoring the kernel choices in ${file!.path} (${(e as Error).message}); kernels run their defaults until ` +
          `tuned again`,
      );
      return {};
    }
  }

  /** Where the choices are kept, or null when nowhere (they last as long as the engine). */
  get path(): string | null {
    return this.file?.path ?? null;
  }

  /** The choice for `kernel` (whose source hashes to `source`) at `key` among `candidates`, if tuned. */
  lookup(kernel: string, source: string, key: string, candidates: readonly string[]): Choice | null {
    const entry = this.kernels[kernel];
    const choice = entry?.source === source && isObject(entry.keys) ? entry.keys[key] : undefined;
    if (!isObject(choice) || !Array.isArray(choice.candidates) || !sameList(choice.candidates, candidates)) return null;
    return candidates.includes(choice.choice) ? choice : null;
  }

  /** Every choice whose kernel source still hashes as `sourceOf` says (null: a kernel no longer known). */
  choices(sourceOf: (kernel: string) => string | null): Choice[] {
    return Object.entries(this.kernels)
      .filter(([kernel, entry]) => isObject(entry) && isObject(entry.keys) && entry.source === sourceOf(kernel))
      .flatMap(([, entry]) => Object.values(entry.keys).filter((c) => isObject(c) && Array.isArray(c.pipelines)));
  }

  /** Keeps a choice in memory; `save` writes it. A changed source drops the kernel's older keys. */
  set(kernel: string, source: string, key: string, choice: Choice): void {
    if (this.kernels[kernel]?.source !== source) this.kernels[kernel] = { source, keys: {} };
    this.kernels[kernel].keys[key] = choice;
    if (!this.changed.has(kernel)) this.changed.set(kernel, new Set());
    this.changed.get(kernel)!.add(key);
  }

  /**
   * Writes the choices set since the last save into the file as it is now on disk (atomically); a failure is a warning.
   */
  save(): void {
    if (!this.file || !this.changed.size) return;
    const adapters = ChoiceCache.readAdapters(this.file, () => {});
    const kernels = adapters[this.adapter]?.kernels ?? {};
    for (const [kernel, keys] of this.changed) {
      const { source } = this.kernels[kernel];
      if (!isObject(kernels[kernel]) || kernels[kernel].source !== source || !isObject(kernels[kernel].keys))
        kernels[kernel] = { source, keys: {} };
      for (const key of keys) kernels[kernel].keys[key] = this.kernels[kernel].keys[key];
    }
    adapters[this.adapter] = { kernels };
    this.changed.clear();
    try {
      this.file.write(`${JSON.stringify({ version: 1, adapters }, null, 1)}\n`);
    } catch (e) {
      this.warn(`could not save the kernel choices to ${this.file.path}: ${(e as Error).message}`);
    }
  }
}
