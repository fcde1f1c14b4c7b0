/**
 * The package root, `sisn-webgpu`: the user API (the engine, tensors, ops, modules and SISN, weights
 * loaders, upscaling, training, evaluation, metrics, image I/O). The engine's internals are
 * `sisn-webgpu/internals` (src/internals.ts).
 */
export { Gpu, type GpuOptions, type EngineFeatures, type FeatureLevel } from './engine.js';
export type { TunedKey, TuningRun, TuneOptions } from './kernels/tuner.js';
export { Tensor, shapeSize, sameShape, formatShape, type Shape, type Engine } from './tensor.js';
export * from './ops/index.js';
export { ParameterSet, type ParamSpec } from './optim/params.js';
export { Adam, MultiStepLR, type AdamOptions } from './optim/adam.js';
export { SISN, SisnNet, RGB_MEAN, type SisnConfig } from './nn/sisn.js';
export { Module, Conv2d, BatchNorm2d, type ModelState, type StateEntry } from './nn/module.js';
export { SplitAttention } from './nn/split-attention.js';
export { ISAB, ESAG } from './nn/blocks.js';
export { parseSafetensors, serializeSafetensors, type SafeTensor, type SafeFile } from './io/safetensors.js';
export { loadSisn, saveSisn, loadStateDict, stateDict, inferConfig } from './nn/sisn-weights.js';
export { stripModulePrefix, readStateDict } from './io/weights.js';
export type { StateDict } from './io/safetensors.js';
export { parseTfjsWeights, readTfjsWeights, type TfjsTensor, type TfjsWeights } from './io/tfjs.js';
export { checkConformance, type ConformanceReport, type ConformanceOptions, type Check } from './conformance/check.js';
export { readTorchCheckpoint, parseTorchCheckpoint } from './io/torch.js';
export { parseStateDict, detectWeightsFormat, type WeightsFormat } from './io/state-dict.js';
export { upscale, defaultTileSize, type UpscaleOptions, type SuperResolver } from './nn/upscale.js';
export { decodeImage, readImage, encodePng, writePng, type RgbImage } from './io/image.js';
export { imresize, imresizeTo, modCrop, resampleWeights, type Rounding } from './io/resize.js';
export { psnr, ssim, mse, type MetricImage, type MetricOptions } from './metrics/index.js';
export { Rng } from './data/rng.js';
export { listImages, selectRange, loadPairs, type FacePair, type DatasetOptions } from './data/dataset.js';
export { PatchSampler, type Batch } from './data/sampler.js';
export { train, DEFAULTS as TRAIN_DEFAULTS, type TrainOptions, type TrainResult } from './train/trainer.js';
export { evaluate, predict, bicubicUp, type Scores, type EvalResult } from './train/evaluate.js';
export { saveCheckpoint, loadCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from './train/checkpoint.js';
export {
  FaceRecognizer,
  FaceDetector,
  loadFaceNets,
  readFaceWeights,
  type FaceWeights,
  describeFaces,
  detectFaces,
  descriptorDistance,
  decodeDetections,
  networkInput,
  cropBox,
  MATCH_DISTANCE,
  type Box,
  type Detection,
  type DetectOptions,
  type RecognizerBlock,
  FrozenConv,
  type ConvSpec,
} from './nn/face/index.js';
export {
  evaluateIdentity,
  nearestUp,
  type IdentityResult,
  type IdentitySummary,
  type IdentityImage,
} from './train/identity.js';
export { writePlot, writeSheet, type Point } from './train/report.js';
