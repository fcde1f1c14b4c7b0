/**
 * `sisn-webgpu/internals`: the engine's parts beneath the user API, for tests, benchmarks and tools
 * that work on the engine itself (the kernel registry and its reflection, preprocessing and launch
 * arithmetic, the tuner, the buffer pool, the tape, where the shaders are). Not the stable surface:
 * what the package root exports is.
 */
export { subgroupSizesFit, DeviceContext } from './gpu/device.js';
export { CommandRecorder } from './gpu/recorder.js';
export { BufferPool, bucketSize } from './gpu/pool.js';
export { KernelRegistry } from './kernels/registry.js';
export { KernelTuner, decideVariant, median, type Trial } from './kernels/tuner.js';
export {
  reflectShader,
  packUniforms,
  moduleConstants,
  type KernelInfo,
  type UniformLayout,
  type UniformField,
  type UniformValues,
  type StorageSlot,
  type Constants,
} from './kernels/reflect.js';
export { foldGroups, type DispatchArgs, type BufferRange, type Bindable, type Grid } from './kernels/launch.js';
export { preprocess } from './kernels/preprocess.js';
export { SHADER_DIR } from './platform/node.js';
export { Storage, viewOf } from './tensor.js';
export { Tape, type BackwardRule, type TapeTensor, type TapeNode, type GradientKernels } from './autograd/tape.js';
