/**
 * A fixture set in the format `sisn-oracle-fixtures/1`: a folder with `manifest.json`, which
 * declares every file (bytes, sha256, tensors), the model, the tolerances and, for sets that
 * train, the training step. Everything the checker needs comes from here.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, type SafeTensor } from '../io/safetensors.js';

export const FORMAT = 'sisn-oracle-fixtures/1';

interface TensorDecl {
  dtype: string;
  shape: number[];
}

interface FileDecl {
  bytes?: number;
  sha256?: string;
  /** Every tensor with dtype and shape, or a count such as "136 tensors (see file header)". */
  tensors?: Record<string, TensorDecl> | string;
}

interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Manifest {
  format: string;
  name?: string;
  model: {
    scale: number;
    groups_G: number;
    blocks_I: number;
    channels_C: number;
    inter_channels?: number;
    param_count?: number;
  };
  files: Record<string, FileDecl>;
  train?: {
    loss: number;
    optimizer: { lr: number; betas: [number, number]; eps: number };
    params_without_grad: string[];
    params_with_roundoff_only_grad?: string[];
  };
  tolerance_advice: {
    eval_output: Tolerance;
    eval_intermediates: { rtol_to_tensor_absmax: number };
    train_output?: Tolerance;
    loss?: { rtol: number };
    grads?: { rtol_to_tensor_absmax: number };
    params_after_adam?: { atol: number };
    train_buffers_after?: { rtol_to_tensor_absmax: number };
  };
}

const DTYPES: Record<string, string> = { float32: 'F32', f32: 'F32', int64: 'I64', i64: 'I64', uint8: 'U8', u8: 'U8' };

export class Fixture {
  readonly manifest: Manifest;
  private readonly cache = new Map<string, Map<string, SafeTensor>>();

  constructor(readonly dir: string) {
    const path = join(dir, 'manifest.json');
    let manifest: Manifest;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(`${path}: ${missing ? 'no such file (not a fixture set?)' : (e as Error).message}`, { cause: e });
    }
    if (manifest.format !== FORMAT)
      throw new Error(`${path}: format ${JSON.stringify(manifest.format)}, expected ${FORMAT}`);
    for (const key of ['model', 'files', 'tolerance_advice'] as const) {
      if (typeof manifest[key] !== 'object' || manifest[key] === null) throw new Error(`${path}: no "${key}" section`);
    }
    this.manifest = manifest;
  }

  /** The set's name, or its folder. */
  get name(): string {
    return this.manifest.name ?? this.dir;
  }

  declares(file: string): boolean {
    return Object.hasOwn(this.manifest.files, file);
  }

  /** Whether the file is declared by the manifest and present. */
  has(file: string): boolean {
    return this.declares(file) && this.exists(file);
  }

  exists(file: string): boolean {
    return existsSync(join(this.dir, file));
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  tensors(file: string): Map<string, SafeTensor> {
    let t = this.cache.get(file);
    if (!t) {
      t = parseSafetensors(readFileSync(this.path(file)), this.path(file)).tensors;
      this.cache.set(file, t);
    }
    return t;
  }

  tensor(file: string, name: string): SafeTensor {
    const t = this.tensors(file).get(name);
    if (!t) throw new Error(`${this.path(file)}: no tensor ${name}`);
    return t;
  }

  /** The declared tensor names of a file (its header's when the manifest gives only a count). */
  tensorNames(file: string): string[] {
    const declared = this.manifest.files[file]?.tensors;
    return typeof declared === 'object' ? Object.keys(declared) : [...this.tensors(file).keys()];
  }

  /** What is wrong with a declared file (missing, size, sha256, tensors), or null. */
  verify(file: string): string | null {
    if (!existsSync(this.path(file))) return 'declared in the manifest but missing';
    const decl = this.manifest.files[file];
    const bytes = readFileSync(this.path(file));
    if (decl.bytes !== undefined && bytes.byteLength !== decl.bytes)
      return `${bytes.byteLength} bytes, the manifest says ${decl.bytes}`;
    if (decl.sha256 !== undefined) {
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (sha !== decl.sha256) return `sha256 ${sha}, the manifest says ${decl.sha256}`;
    }
    if (!file.endsWith('.safetensors') || decl.tensors === undefined) return null;
    const tensors = this.tensors(file);
    if (typeof decl.tensors === 'string') {
      const count = Number(/^(\d+) tensors/.exec(decl.tensors)?.[1]);
      return Number.isNaN(count) || count === tensors.size
        ? null
        : `${tensors.size} tensors, the manifest says ${count}`;
    }
    for (const [name, want] of Object.entries(decl.tensors)) {
      const t = tensors.get(name);
      if (!t) return `no tensor ${name}`;
      const dtype = DTYPES[want.dtype.toLowerCase()] ?? want.dtype;
      if (t.dtype !== dtype || JSON.stringify(t.shape) !== JSON.stringify(want.shape))
        return (
          `${name} is ${t.dtype} ${JSON.stringify(t.shape)}, the manifest says ${want.dtype} ` +
          `${JSON.stringify(want.shape)}`
        );
    }
    return tensors.size === Object.keys(decl.tensors).length
      ? null
      : `${tensors.size} tensors, the manifest declares ${Object.keys(decl.tensors).length}`;
  }
}

export function f32(t: SafeTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}
