// Dawn's Node bindings export the WebGPU constants (GPUBufferUsage, GPUMapMode, ...) instead of
// defining them globally as a browser does; every module that uses them imports this first.
import { globals } from 'webgpu';

for (const [name, value] of Object.entries(globals)) {
  if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
}
