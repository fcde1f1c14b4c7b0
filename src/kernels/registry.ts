/**
 * Kernel registry: WGSL files in `shaders/`, reflected (reflect.ts) after preprocessing
 * (preprocess.ts).
 *
 * A kernel is `file.entry` (e.g. `elementwise.binary`). Pipelines are cached by kernel and
 * override constants (pipelines.ts); `compile()` builds them asynchronously and de-duplicated,
 * `warmup()` builds a set, `prepare()` builds and runs a model's set ahead of its first step.
 * Shapes travel in uniforms, so one pipeline serves every size. `dispatch()` owns the launch
 * contract (launch.ts). Where an op offers variants of a kernel, `variant()` says which to launch,
 * as tuned for this adapter (tuner.ts). `constant()` reads a shader's module-scope constants.
 */
import '../gpu/globals.js';
import type { DeviceContext } from '../gpu/device.js';
import { platform } from '../platform/index.js';
import { preprocess } from './preprocess.js';
import { reflectShader, packUniforms, type Constants, type KernelInfo } from './reflect.js';
import { launchGroups, rangeOf, type Bindable, type BufferRange, type DispatchArgs } from './launch.js';
import { PipelineCache } from './pipelines.js';
import { KernelTuner, type Trial } from './tuner.js';

export class KernelRegistry {
  private readonly infos = new Map<string, KernelInfo>();
  private readonly pipelines: PipelineCache;
  private placeholderBuffer: GPUBuffer | null = null;
  private readonly scratchBuffers: GPUBuffer[] = [];
  /** Chooses among an op's variants of a kernel, and times them in tuning runs. */
  readonly tuner: KernelTuner;

  constructor(private readonly context: DeviceContext) {
    this.pipelines = new PipelineCache(context.device, context.recorder);
    this.tuner = new KernelTuner(context, (name) => this.find(name)?.code ?? null);
  }

  /** Pipelines created so far (cache misses), for tests. */
  get pipelinesCreated(): number {
    return this.pipelines.created;
  }

  /**
   * Adds a shader from source (the `shaders/` directory is loaded on first use). `flags` add to or
   * override the device's features for its `// @if` blocks: a kernel variant built as its own file.
   */
  define(file: string, source: string, flags: Record<string, boolean> = {}): KernelInfo[] {
    const infos = reflectShader(file, preprocess(file, source, { ...this.context.features, ...flags }));
    for (const info of infos) this.infos.set(info.name, info);
    return infos;
  }

  info(name: string): KernelInfo {
    const info = this.find(name);
    if (info) return info;
    const file = name.split('.')[0];
    if (platform.readShader(file) === null) throw new Error(`unknown kernel ${name}: no shaders/${file}.wgsl`);
    throw new Error(
      `unknown kernel ${name}: shaders/${file}.wgsl has no compute entry '${name.slice(file.length + 1)}'`,
    );
  }

  /**
   * The module-scope constant `name` of a kernel's shader (`const NAME: u32 = ...;`): the one source
   * of a tiling or limit that a launch depends on. Unknown names are errors.
   */
  constant(kernel: string, name: string): number {
    const value = this.info(kernel).constants[name];
    if (value === undefined) throw new Error(`kernel ${kernel}: its shader declares no integer constant ${name}`);
    return value;
  }

  /** A kernel's info (loading its file from `shaders/` the first time), or null when there is no such kernel. */
  private find(name: string): KernelInfo | null {
    if (!this.infos.has(name)) {
      const file = name.split('.')[0];
      const code = platform.readShader(file);
      if (code !== null && ![...this.infos.values()].some((i) => i.file === file)) this.define(file, code);
    }
    return this.infos.get(name) ?? null;
  }

  /**
   * Which of an op's variants of `kernel` to launch for the shape `key`: the one tuned for this
   * adapter, else `names[0]`; in a tuning run (`gpu.tune`) an untuned key's candidates are timed
   * with `trial` (tuner.ts).
   */
  variant(kernel: string, key: string, names: readonly string[], trial: Trial): string {
    return this.tuner.variant(kernel, key, names, trial);
  }

  /** Compiles a kernel asynchronously; concurrent calls for the same kernel share one compile. */
  async compile(name: string, constants?: Constants): Promise<void> {
    await this.pipelines.compile(this.info(name), constants);
  }

  /** Compiles a set of kernels ahead of the first step. */
  async warmup(kernels: ReadonlyArray<string | { name: string; constants?: Constants }>): Promise<void> {
    await Promise.all(
      kernels.map((k) => (typeof k === 'string' ? this.compile(k) : this.compile(k.name, k.constants))),
    );
  }

  /**
   * Compiles the given pipelines (what a model launches) and those of the variants tuned for this
   * adapter, then runs each once on empty shapes: a software adapter compiles at the first
   * dispatch, so this is what moves all compilation before a job's first step. Returns the number of
   * pipelines.
   */
  async prepare(pipelines: readonly { name: string; constants?: Constants }[]): Promise<number> {
    const jobs = [...pipelines];
    jobs.push(...this.tuner.chosenPipelines().filter((p) => this.find(p.name)));
    await this.warmup(jobs);
    // Uniforms left 0 (empty shapes): nothing is read or written, so read-only bindings get the
    // placeholder and writable ones scratch (as `unwritten`).
    for (const job of jobs) {
      const unwritten = this.info(job.name)
        .storage.filter((slot) => !slot.readOnly)
        .map((slot) => slot.name);
      this.record(job.name, { buffers: {}, unwritten, groups: 1, constants: job.constants }, true);
    }
    await this.context.sync();
    return jobs.length;
  }

  /** The buffer bound where a call leaves out a read-only binding it does not read. */
  private placeholder(): BufferRange {
    this.placeholderBuffer ??= this.context.device.createBuffer({
      size: 256,
      usage: GPUBufferUsage.STORAGE,
      label: 'unused binding',
    });
    return { buffer: this.placeholderBuffer, offset: 0, size: 256 };
  }

  /** The k-th scratch buffer bound to a writable binding a call does not write. */
  private scratch(k: number): BufferRange {
    this.scratchBuffers[k] ??= this.context.device.createBuffer({
      size: 256,
      usage: GPUBufferUsage.STORAGE,
      label: 'unwritten binding',
    });
    return { buffer: this.scratchBuffers[k], offset: 0, size: 256 };
  }

  /** Records one dispatch of a kernel into the current step; every uniform member must be given. */
  dispatch(name: string, args: DispatchArgs): void {
    this.record(name, args, false);
  }

  /** `dispatch`, with uniform members left out as 0 where `partialUniforms` (prepareAll's empty runs). */
  private record(name: string, args: DispatchArgs, partialUniforms: boolean): void {
    this.context.checkAlive(`kernel ${name}`);
    this.context.recorder.reserveDispatch();
    const info = this.info(name);
    const { pipeline, layout } = this.pipelines.get(info, args.constants);
    this.tuner.observe(name, args.constants);
    const limits = this.context.limits;
    const entries: GPUBindGroupEntry[] = [];
    const given = new Set(Object.keys(args.buffers).filter((k) => args.buffers[k]));
    const unwritten = args.unwritten ?? [];
    const written: Bindable[] = [];
    for (const slot of info.storage) {
      const b = args.buffers[slot.name];
      given.delete(slot.name);
      const scratch = unwritten.indexOf(slot.name);
      if (scratch >= 0 && (b || slot.readOnly))
        throw new Error(`kernel ${name}: '${slot.name}' is marked unwritten but ${b ? 'given a buffer' : 'read-only'}`);
      if (!b && !slot.readOnly && scratch < 0)
        throw new Error(`kernel ${name}: storage binding '${slot.name}' not given`);
      if (b && !slot.readOnly) written.push(b);
      const r = b ? rangeOf(b) : scratch >= 0 ? this.scratch(scratch) : this.placeholder();
      if (Math.ceil(r.size / 16) * 16 > limits.maxStorageBufferBindingSize) {
        throw new Error(
          `kernel ${name}: binding '${slot.name}' is ${r.size} bytes, over this adapter's ` +
            `maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}); process the data in smaller pieces`,
        );
      }
      // Rounded up to 16 bytes so kernels may read and write whole vec4s: every tensor's storage
      // (pooled buffers, arena views) has that slack, and kernels never let the slack reach a result.
      entries.push({
        binding: slot.binding,
        resource: { buffer: r.buffer, offset: r.offset, size: Math.max(16, Math.ceil(r.size / 16) * 16) },
      });
    }
    const unknown = unwritten.filter((u) => !info.storage.some((slot) => slot.name === u));
    if (given.size || unknown.length)
      throw new Error(`kernel ${name}: no storage binding named ${[...given, ...unknown].join(', ')}`);
    if (info.uniform) {
      const slice = this.context.recorder.uniform(
        packUniforms(name, info.uniform, args.uniforms ?? {}, partialUniforms),
      );
      entries.push({
        binding: info.uniform.binding,
        resource: { buffer: slice.buffer, offset: slice.offset, size: slice.size },
      });
    } else if (args.uniforms && Object.keys(args.uniforms).length) {
      throw new Error(`kernel ${name} has no uniform struct`);
    }
    const groups = launchGroups(name, info.workgroupSize, args, limits.maxComputeWorkgroupsPerDimension);
    if (groups[0] * groups[1] * groups[2] === 0) return;
    const label = args.tag ? `${name} (${args.tag})` : name;
    const bindGroup = this.context.device.createBindGroup({ layout, entries, label });
    this.context.recorder.dispatch(pipeline, bindGroup, groups, label);
    for (const b of written) if ('range' in b) b.markWritten?.();
  }
}
