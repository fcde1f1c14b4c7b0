export { Gpu, type GpuOptions, type EngineFeatures } from './gpu/device.js';
export { BufferPool, bucketSize } from './gpu/pool.js';
export { KernelRegistry, reflectShader, packUniforms, foldGroups, SHADER_DIR } from './kernels/registry.js';
export { Tensor, Storage, shapeSize, sameShape, formatShape, type Shape } from './tensor.js';
export { Tape } from './autograd/tape.js';
export * from './ops/index.js';
export { ParameterSet, type ParamSpec } from './params.js';
export { Adam, MultiStepLR, type AdamOptions } from './optim/adam.js';
