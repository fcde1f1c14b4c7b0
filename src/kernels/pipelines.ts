/**
 * Compute pipelines by kernel and override constants, each built once: asynchronously and
 * de-duplicated (`compile`, errors thrown with the shader's line numbers), or synchronously at a
 * first dispatch (`get`, errors reported at the next sync). One shader module per WGSL file.
 */
import '../gpu/globals.js';
import type { CommandRecorder } from '../gpu/recorder.js';
import type { Constants, KernelInfo } from './reflect.js';

export interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/**
 * Throws, naming the kernel and the limit, where `info` needs more than the device allows: a
 * device in WebGPU's compatibility mode or at WebGPU's default limits may offer fewer storage
 * buffers per stage and invocations per workgroup than a kernel declares (the engine asks for the
 * adapter's limits, so this is what even those cannot give).
 */
export function assertFits(info: KernelInfo, limits: GPUSupportedLimits): void {
  const [x, y, z] = info.workgroupSize;
  const needs: [string, number, keyof GPUSupportedLimits][] = [
    ['storage buffers per shader stage', info.storage.length, 'maxStorageBuffersPerShaderStage'],
    ['invocations per workgroup', x * y * z, 'maxComputeInvocationsPerWorkgroup'],
    ['invocations along x', x, 'maxComputeWorkgroupSizeX'],
    ['invocations along y', y, 'maxComputeWorkgroupSizeY'],
    ['invocations along z', z, 'maxComputeWorkgroupSizeZ'],
  ];
  for (const [what, need, limit] of needs) {
    const allowed = limits[limit] as number;
    if (need > allowed)
      throw new Error(
        `kernel ${info.name} (shaders/${info.file}.wgsl) needs ${need} ${what}; this device allows ${allowed} ` +
          `(${limit}): open the engine with the adapter's limits (the default) or on another adapter`,
      );
  }
}

export class PipelineCache {
  private readonly compiled = new Map<string, Compiled>();
  private readonly compiling = new Map<string, Promise<Compiled>>();
  private readonly modules = new Map<string, GPUShaderModule>();
  /** Pipelines created so far (cache misses). */
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly recorder: CommandRecorder,
  ) {}

  private key(name: string, constants?: Constants): string {
    return constants
      ? `${name}|${Object.entries(constants)
          .sort()
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`
      : name;
  }

  private descriptors(info: KernelInfo, constants?: Constants) {
    const device = this.device;
    let module = this.modules.get(info.file);
    if (!module) {
      module = device.createShaderModule({ code: info.code, label: info.file });
      this.modules.set(info.file, module);
    }
    const entries: GPUBindGroupLayoutEntry[] = info.storage.map((s) => ({
      binding: s.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: s.readOnly ? 'read-only-storage' : 'storage' },
    }));
    if (info.uniform)
      entries.push({ binding: info.uniform.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    const layout = device.createBindGroupLayout({ entries, label: info.name });
    const pipelineDescriptor: GPUComputePipelineDescriptor = {
      label: info.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout], label: info.name }),
      compute: { module, entryPoint: info.entry, constants },
    };
    return { module, layout, pipelineDescriptor };
  }

  /** Throws before any error scope is pushed where the kernel cannot be built on this device. */
  private validate(info: KernelInfo, constants?: Constants): void {
    for (const k of Object.keys(constants ?? {}))
      if (!info.overrides.includes(k)) throw new Error(`kernel ${info.name}: no override constant '${k}'`);
    assertFits(info, this.device.limits);
  }

  /** Compiles a kernel asynchronously; concurrent calls for the same kernel share one compile. */
  compile(info: KernelInfo, constants?: Constants): Promise<void> {
    const name = info.name;
    const key = this.key(name, constants);
    if (this.compiled.has(key)) return Promise.resolve();
    let pending = this.compiling.get(key);
    if (!pending) {
      pending = (async () => {
        const device = this.device;
        this.validate(info, constants);
        device.pushErrorScope('validation');
        const { module, layout, pipelineDescriptor } = this.descriptors(info, constants);
        const scopeError = device.popErrorScope();
        const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
        if (messages.length) {
          throw new Error(
            `kernel ${name} (shaders/${info.file}.wgsl) failed to compile:\n` +
              messages.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'),
          );
        }
        const err = await scopeError;
        if (err) throw new Error(`kernel ${name}: ${err.message}`);
        let pipeline: GPUComputePipeline;
        try {
          pipeline = await device.createComputePipelineAsync(pipelineDescriptor);
        } catch (e) {
          throw new Error(`kernel ${name}: pipeline creation failed: ${(e as Error).message}`, { cause: e });
        }
        this.created++;
        const c = { pipeline, layout };
        this.compiled.set(key, c);
        return c;
      })().finally(() => this.compiling.delete(key));
      this.compiling.set(key, pending);
    }
    return pending.then(() => undefined);
  }

  /** The cached pipeline, or one created synchronously (its errors surface at the next sync). */
  get(info: KernelInfo, constants?: Constants): Compiled {
    const name = info.name;
    const key = this.key(name, constants);
    let c = this.compiled.get(key);
    if (!c) {
      const device = this.device;
      this.validate(info, constants);
      device.pushErrorScope('validation');
      const { layout, pipelineDescriptor } = this.descriptors(info, constants);
      c = { pipeline: device.createComputePipeline(pipelineDescriptor), layout };
      this.recorder.track(device.popErrorScope(), `kernel ${name} failed to compile (shaders/${info.file}.wgsl)`);
      this.created++;
      this.compiled.set(key, c);
    }
    return c;
  }
}
