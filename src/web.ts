/**
 * The browser bundle's entry (scripts/build-web.mjs): the engine, ops, model, weights from bytes,
 * PNG/JPEG from bytes, MATLAB bicubic and whole-image upscaling. What needs a file system
 * (datasets, training runs, checkpoints on disk, the CLI) stays in the Node entry, src/index.ts.
 */
export { Gpu, type GpuOptions, type EngineFeatures, type FeatureLevel } from './engine.js';
export { Tensor, type Shape } from './tensor.js';
export * from './ops/index.js';
export { Adam, MultiStepLR, type AdamOptions } from './optim/adam.js';
export { SISN, type SisnConfig } from './nn/sisn.js';
export {
  parseSafetensors,
  serializeSafetensors,
  type SafeTensor,
  type SafeFile,
  type StateDict,
} from './io/safetensors.js';
export { loadSisn, loadStateDict, stateDict, inferConfig } from './nn/sisn-weights.js';
export { upscale, defaultTileSize, type UpscaleOptions } from './nn/upscale.js';
export { decodeImage, encodePng, type RgbImage } from './io/image.js';
export { imresize, imresizeTo, modCrop, type Rounding } from './io/resize.js';
export { psnr, ssim, type MetricImage, type MetricOptions } from './metrics/index.js';
