/**
 * Kernel registry: WGSL files in `shaders/`, reflected with wgsl_reflect.
 *
 * A kernel is `file.entry` (e.g. `elementwise.binary`). From the WGSL itself we derive the
 * explicit bind-group layout of each entry point (only the bindings it uses) and the byte layout of
 * its uniform struct, so no byte offset is ever written by hand. Pipelines are cached by kernel and
 * override constants; `compile()` builds them asynchronously and de-duplicated, `warmup()` builds a
 * set ahead of the first step. Shapes travel in uniforms, so one pipeline serves every size.
 */
import '../gpu/globals.js';
import { platform } from '../platform/index.js';
import { WgslReflect, ResourceType, type VariableInfo, type MemberInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { Gpu } from '../gpu/device.js';

/** A byte range of a buffer, as bound to a storage binding. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** Anything that can be bound: a raw range or an object (a Tensor) that exposes one. */
export type Bindable = BufferRange | { readonly range: BufferRange };

export type UniformValues = Record<string, number | readonly number[]>;
export type Constants = Record<string, number>;

export interface UniformField {
  name: string;
  offset: number;
  /** Scalar kind of each component. */
  kind: 'u32' | 'i32' | 'f32';
  components: number;
}

export interface UniformLayout {
  binding: number;
  size: number;
  fields: UniformField[];
}

export interface StorageSlot {
  name: string;
  binding: number;
  readOnly: boolean;
}

/** What reflection tells about one entry point. */
export interface KernelInfo {
  name: string;
  file: string;
  entry: string;
  code: string;
  uniform: UniformLayout | null;
  storage: StorageSlot[];
  workgroupSize: [number, number, number];
  overrides: string[];
}

export type Grid = readonly [number, number, number];

/**
 * One launch. The work is given as `invocations` (the usual case: the registry divides by the
 * entry point's declared `@workgroup_size`) or as `groups` (kernels whose workgroup shares one
 * item, e.g. a channel's reduction). A count is 1-D and folded into (x, y) past the adapter's
 * maxComputeWorkgroupsPerDimension (kernels rebuild the flat index from `num_workgroups`); a grid
 * is 3-D and not folded.
 */
export interface DispatchArgs {
  /** Uniform struct members by name; members left out are 0. */
  uniforms?: UniformValues;
  /**
   * Storage bindings by name. A read-only binding may be left out (null or absent) when this call
   * does not read it (a flag in the uniforms says so): the registry binds a small placeholder.
   */
  buffers: Record<string, Bindable | null | undefined>;
  invocations?: number | Grid;
  groups?: number | Grid;
  constants?: Constants;
  /** Shown after the kernel name in profiles and error messages (e.g. 'input grad'). */
  tag?: string;
}

function componentInfo(typeName: string, formatName: string | undefined): { kind: UniformField['kind']; components: number } {
  const vec = /^vec([234])(?:([fiu])|<(\w+)>)?$/.exec(typeName);
  if (vec) {
    const suffix = vec[2] ?? '';
    const scalar = vec[3] ?? formatName ?? { f: 'f32', i: 'i32', u: 'u32' }[suffix];
    if (scalar !== 'f32' && scalar !== 'i32' && scalar !== 'u32') throw new Error(`unsupported uniform vector type ${typeName}`);
    return { kind: scalar, components: Number(vec[1]) };
  }
  if (typeName === 'f32' || typeName === 'i32' || typeName === 'u32') return { kind: typeName, components: 1 };
  throw new Error(`unsupported uniform member type ${typeName}`);
}

function uniformLayout(v: VariableInfo): UniformLayout {
  const members: MemberInfo[] = v.members ?? [];
  if (!v.isStruct) throw new Error(`uniform ${v.name} must be a struct`);
  return {
    binding: v.binding,
    size: v.size,
    fields: members.map((m) => ({ name: m.name, offset: m.offset, ...componentInfo(m.type.name, m.type.isTemplate ? m.format?.name : undefined) })),
  };
}

/**
 * Keeps the lines of `// @if FEATURE` / `// @else` / `// @endif` blocks that apply to the device's
 * features, and enables the WGSL extensions the kept code needs. This is how one shader holds a
 * fast path for an optional feature (`subgroups`) and the portable path beside it.
 * `// @include NAME` is replaced by shaders/include/NAME.wgsl (helpers WGSL has no import for).
 */
export function preprocess(file: string, source: string, features: Record<string, boolean>): string {
  const code = source.replace(/^[ \t]*\/\/[ \t]*@include[ \t]+(\w+)[ \t]*$/gm, (_, name: string) => {
    const included = platform.shaderSource(`include/${name}`);
    if (included === undefined) throw new Error(`shaders/${file}.wgsl: no shaders/include/${name}.wgsl to include`);
    // Joined into one line so the including file's line numbers stay true.
    return included.split('\n').filter((l) => !/^\s*\/\//.test(l)).join(' ');
  });
  const out: string[] = [];
  const stack: { keep: boolean; parentKeep: boolean }[] = [];
  let used = false;
  code.split('\n').forEach((line, n) => {
    const directive = /^\s*\/\/\s*@(if|else|endif)\b\s*(\w*)/.exec(line);
    const keep = stack.length ? stack[stack.length - 1].keep : true;
    if (!directive) {
      out.push(keep ? line : '');
      return;
    }
    out.push('');
    const [, word, name] = directive;
    if (word === 'if') {
      if (!(name in features)) throw new Error(`shaders/${file}.wgsl:${n + 1}: unknown feature '${name}' in @if`);
      if (name === 'subgroups' && features[name]) used = true;
      stack.push({ keep: keep && features[name], parentKeep: keep });
    } else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`shaders/${file}.wgsl:${n + 1}: @else without @if`);
      top.keep = top.parentKeep && !top.keep;
    } else if (!stack.pop()) throw new Error(`shaders/${file}.wgsl:${n + 1}: @endif without @if`);
  });
  if (stack.length) throw new Error(`shaders/${file}.wgsl: @if without @endif`);
  // Line numbers stay those of the file: the directive lines become blank, `enable` joins line 1.
  if (used) out[0] = `enable subgroups; ${out[0]}`;
  return out.join('\n');
}

/** Reflects every compute entry point of one WGSL source. */
export function reflectShader(file: string, code: string): KernelInfo[] {
  let reflect: WgslReflect;
  try {
    reflect = new WgslReflect(code);
  } catch (e) {
    throw new Error(`shader ${file}: WGSL parse error: ${(e as Error).message}`);
  }
  return reflect.entry.compute.map((fn) => {
    const uniforms = fn.resources.filter((r) => r.resourceType === ResourceType.Uniform);
    const storage = fn.resources.filter((r) => r.resourceType === ResourceType.Storage);
    const others = fn.resources.filter((r) => r.resourceType !== ResourceType.Uniform && r.resourceType !== ResourceType.Storage);
    if (uniforms.length > 1 || others.length) throw new Error(`kernel ${file}.${fn.name}: use at most one uniform struct and storage buffers only`);
    for (const r of fn.resources) if (r.group !== 0) throw new Error(`kernel ${file}.${fn.name}: binding ${r.name} must be in group 0`);
    return {
      name: `${file}.${fn.name}`,
      file,
      entry: fn.name,
      code,
      uniform: uniforms.length ? uniformLayout(uniforms[0]) : null,
      storage: storage.map((s) => ({ name: s.name, binding: s.binding, readOnly: s.access === 'read' })),
      workgroupSize: (fn.workgroupSize ?? [1, 1, 1]) as [number, number, number],
      // Module-wide: reflection misses overrides used only inside some statements (e.g. `switch`).
      overrides: reflect.overrides.map((o) => o.name),
    };
  });
}

/**
 * Packs uniform values at their reflected offsets. Unknown names are errors; missing ones too,
 * unless `partial` (then they are 0).
 */
export function packUniforms(kernel: string, layout: UniformLayout, values: UniformValues, partial = false): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(layout.size / 16) * 16);
  const view = new DataView(bytes.buffer);
  const known = new Set(layout.fields.map((f) => f.name));
  for (const key of Object.keys(values)) if (!known.has(key)) throw new Error(`kernel ${kernel}: no uniform member named '${key}'`);
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (partial) continue;
      throw new Error(`kernel ${kernel}: uniform member '${f.name}' not given`);
    }
    const list = typeof v === 'number' ? [v] : v;
    if (list.length !== f.components) throw new Error(`kernel ${kernel}: uniform '${f.name}' takes ${f.components} values, got ${list.length}`);
    list.forEach((x, i) => {
      const at = f.offset + 4 * i;
      if (f.kind === 'f32') view.setFloat32(at, x, true);
      else if (f.kind === 'i32') view.setInt32(at, x, true);
      else {
        if (!(Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) throw new Error(`kernel ${kernel}: uniform '${f.name}' must be a u32, got ${x}`);
        view.setUint32(at, x, true);
      }
    });
  }
  return bytes;
}

/** Splits a workgroup count over x and y when it passes the per-dimension limit. */
export function foldGroups(count: number, maxPerDim: number): [number, number, number] {
  if (!Number.isInteger(count) || count < 0) throw new Error(`invalid workgroup count ${count}`);
  if (count <= maxPerDim) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) throw new Error(`${count} workgroups exceed ${maxPerDim}^2`);
  return [Math.ceil(count / y), y, 1];
}

/** Workgroups for a launch of `args` on an entry point of `workgroupSize` (see DispatchArgs). */
export function launchGroups(kernel: string, workgroupSize: readonly [number, number, number], args: Pick<DispatchArgs, 'invocations' | 'groups'>, maxPerDim: number): [number, number, number] {
  const { invocations, groups } = args;
  if ((invocations === undefined) === (groups === undefined)) throw new Error(`kernel ${kernel}: give either invocations or groups`);
  const work = invocations ?? groups!;
  const per = invocations === undefined ? [1, 1, 1] : workgroupSize;
  if (typeof work === 'number') return foldGroups(Math.ceil(work / (per[0] * per[1] * per[2])), maxPerDim);
  const grid = work.map((n, i) => Math.ceil(n / per[i])) as [number, number, number];
  if (grid.some((n) => !Number.isInteger(n) || n < 0 || n > maxPerDim)) throw new Error(`kernel ${kernel}: workgroup grid [${grid.join(', ')}] is invalid or exceeds ${maxPerDim} per dimension`);
  return grid;
}

function rangeOf(b: Bindable): BufferRange {
  return 'range' in b ? b.range : b;
}

interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class KernelRegistry {
  private readonly infos = new Map<string, KernelInfo>();
  private readonly compiled = new Map<string, Compiled>();
  private readonly compiling = new Map<string, Promise<Compiled>>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private placeholderBuffer: GPUBuffer | null = null;
  /** Pipelines created so far (cache misses), for tests. */
  pipelinesCreated = 0;

  constructor(private readonly gpu: Gpu) {}

  /** Adds a shader from source (the `shaders/` directory is loaded on first use). */
  define(file: string, source: string): KernelInfo[] {
    const infos = reflectShader(file, preprocess(file, source, { ...this.gpu.features }));
    for (const info of infos) this.infos.set(info.name, info);
    return infos;
  }

  info(name: string): KernelInfo {
    let info = this.infos.get(name);
    if (!info) {
      const file = name.split('.')[0];
      const code = platform.shaderSource(file);
      if (code === undefined) throw new Error(`unknown kernel ${name}: no shaders/${file}.wgsl`);
      this.define(file, code);
      info = this.infos.get(name);
      if (!info) throw new Error(`unknown kernel ${name}: shaders/${file}.wgsl has no compute entry '${name.slice(file.length + 1)}'`);
    }
    return info;
  }

  /** Every kernel of every file in `shaders/` (kernels added with `define` included). */
  allKernelNames(): string[] {
    const files = platform.shaderNames();
    for (const f of files) if (![...this.infos.values()].some((i) => i.file === f)) this.define(f, platform.shaderSource(f)!);
    return [...this.infos.values()].filter((i) => files.includes(i.file)).map((i) => i.name);
  }

  private key(name: string, constants?: Constants): string {
    return constants ? `${name}|${Object.entries(constants).sort().map(([k, v]) => `${k}=${v}`).join(',')}` : name;
  }

  private descriptors(info: KernelInfo, constants?: Constants) {
    const device = this.gpu.device;
    let module = this.modules.get(info.file);
    if (!module) {
      module = device.createShaderModule({ code: info.code, label: info.file });
      this.modules.set(info.file, module);
    }
    for (const k of Object.keys(constants ?? {})) if (!info.overrides.includes(k)) throw new Error(`kernel ${info.name}: no override constant '${k}'`);
    const entries: GPUBindGroupLayoutEntry[] = info.storage.map((s) => ({
      binding: s.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: s.readOnly ? 'read-only-storage' : 'storage' },
    }));
    if (info.uniform) entries.push({ binding: info.uniform.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    const layout = device.createBindGroupLayout({ entries, label: info.name });
    const pipelineDescriptor: GPUComputePipelineDescriptor = {
      label: info.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout], label: info.name }),
      compute: { module, entryPoint: info.entry, constants },
    };
    return { module, layout, pipelineDescriptor };
  }

  /** Compiles a kernel asynchronously; concurrent calls for the same kernel share one compile. */
  compile(name: string, constants?: Constants): Promise<void> {
    const key = this.key(name, constants);
    if (this.compiled.has(key)) return Promise.resolve();
    let pending = this.compiling.get(key);
    if (!pending) {
      pending = (async () => {
        const info = this.info(name);
        const device = this.gpu.device;
        device.pushErrorScope('validation');
        const { module, layout, pipelineDescriptor } = this.descriptors(info, constants);
        const scopeError = device.popErrorScope();
        const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
        if (messages.length) {
          throw new Error(`kernel ${name} (shaders/${info.file}.wgsl) failed to compile:\n` + messages.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'));
        }
        const err = await scopeError;
        if (err) throw new Error(`kernel ${name}: ${err.message}`);
        let pipeline: GPUComputePipeline;
        try {
          pipeline = await device.createComputePipelineAsync(pipelineDescriptor);
        } catch (e) {
          throw new Error(`kernel ${name}: pipeline creation failed: ${(e as Error).message}`);
        }
        this.pipelinesCreated++;
        const c = { pipeline, layout };
        this.compiled.set(key, c);
        return c;
      })().finally(() => this.compiling.delete(key));
      this.compiling.set(key, pending);
    }
    return pending.then(() => undefined);
  }

  /** Compiles a set of kernels ahead of the first step. */
  async warmup(kernels: ReadonlyArray<string | { name: string; constants?: Constants }>): Promise<void> {
    await Promise.all(kernels.map((k) => (typeof k === 'string' ? this.compile(k) : this.compile(k.name, k.constants))));
  }

  /**
   * Compiles every kernel of `shaders/` for every combination of the given override values (each
   * kernel gets the overrides its file declares), then runs each pipeline once on empty shapes:
   * a software adapter compiles at the first dispatch, so this is what moves all compilation
   * before a job's first step. Returns the number of pipelines.
   */
  async prepareAll(variants: Record<string, readonly number[]>): Promise<number> {
    const jobs: { name: string; constants?: Constants }[] = [];
    for (const name of this.allKernelNames()) {
      const info = this.info(name);
      let combos: Constants[] = [{}];
      for (const o of info.overrides) {
        const values = variants[o];
        if (values) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [o]: v })));
      }
      for (const constants of combos) jobs.push({ name, constants: Object.keys(constants).length ? constants : undefined });
    }
    await this.warmup(jobs);
    // Zero uniforms (empty shapes); read-only bindings get the placeholder, writable ones their own buffer.
    const device = this.gpu.device;
    const writable: GPUBuffer[] = [];
    for (const job of jobs) {
      const buffers: Record<string, BufferRange> = {};
      this.info(job.name).storage.filter((slot) => !slot.readOnly).forEach((slot, i) => {
        writable[i] ??= device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE, label: 'warm-up' });
        buffers[slot.name] = { buffer: writable[i], offset: 0, size: 256 };
      });
      this.dispatch(job.name, { buffers, groups: 1, constants: job.constants });
    }
    await this.gpu.sync();
    writable.forEach((b) => b.destroy());
    return jobs.length;
  }

  /** The cached pipeline, or one created synchronously (its errors surface at the next sync). */
  private pipeline(name: string, constants?: Constants): Compiled {
    const key = this.key(name, constants);
    let c = this.compiled.get(key);
    if (!c) {
      const info = this.info(name);
      const device = this.gpu.device;
      device.pushErrorScope('validation');
      const { layout, pipelineDescriptor } = this.descriptors(info, constants);
      c = { pipeline: device.createComputePipeline(pipelineDescriptor), layout };
      this.gpu.recorder.track(device.popErrorScope(), `kernel ${name} failed to compile (shaders/${info.file}.wgsl)`);
      this.pipelinesCreated++;
      this.compiled.set(key, c);
    }
    return c;
  }

  /** The buffer bound where a call leaves out a read-only binding it does not read. */
  private placeholder(): BufferRange {
    this.placeholderBuffer ??= this.gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE, label: 'unused binding' });
    return { buffer: this.placeholderBuffer, offset: 0, size: 256 };
  }

  /** Records one dispatch of a kernel into the current step. */
  dispatch(name: string, args: DispatchArgs): void {
    this.gpu.checkAlive();
    this.gpu.recorder.reserveDispatch();
    const info = this.info(name);
    const { pipeline, layout } = this.pipeline(name, args.constants);
    const limits = this.gpu.limits;
    const entries: GPUBindGroupEntry[] = [];
    const given = new Set(Object.keys(args.buffers).filter((k) => args.buffers[k]));
    for (const slot of info.storage) {
      const b = args.buffers[slot.name];
      given.delete(slot.name);
      if (!b && !slot.readOnly) throw new Error(`kernel ${name}: storage binding '${slot.name}' not given`);
      const r = b ? rangeOf(b) : this.placeholder();
      if (Math.ceil(r.size / 16) * 16 > limits.maxStorageBufferBindingSize) {
        throw new Error(`kernel ${name}: binding '${slot.name}' is ${r.size} bytes, over this adapter's maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}); process the data in smaller pieces`);
      }
      // Rounded up to 16 bytes so kernels may read and write whole vec4s: every tensor's storage
      // (pooled buffers, arena views) has that slack, and kernels never let the slack reach a result.
      entries.push({ binding: slot.binding, resource: { buffer: r.buffer, offset: r.offset, size: Math.max(16, Math.ceil(r.size / 16) * 16) } });
    }
    if (given.size) throw new Error(`kernel ${name}: no storage binding named ${[...given].join(', ')}`);
    if (info.uniform) {
      const slice = this.gpu.recorder.uniform(packUniforms(name, info.uniform, args.uniforms ?? {}, true));
      entries.push({ binding: info.uniform.binding, resource: { buffer: slice.buffer, offset: slice.offset, size: slice.size } });
    } else if (args.uniforms && Object.keys(args.uniforms).length) {
      throw new Error(`kernel ${name} has no uniform struct`);
    }
    const groups = launchGroups(name, info.workgroupSize, args, limits.maxComputeWorkgroupsPerDimension);
    if (groups[0] * groups[1] * groups[2] === 0) return;
    const label = args.tag ? `${name} (${args.tag})` : name;
    const bindGroup = this.gpu.device.createBindGroup({ layout, entries, label });
    this.gpu.recorder.dispatch(pipeline, bindGroup, groups, label);
  }
}
