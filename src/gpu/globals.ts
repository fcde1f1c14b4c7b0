// Dawn's Node bindings export the WebGPU constants (GPUBufferUsage, GPUMapMode, ...) instead of
// defining them globally as a browser does; every module that uses them imports this first.
import { platform } from '../platform/index.js';

for (const [name, value] of Object.entries(platform.webgpuGlobals)) {
  if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
}
