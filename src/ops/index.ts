export { add, sub, mul, affine, scale, relu, reluBackward, accumulate } from './elementwise.js';
export {
  conv2d,
  conv2dWithMoments,
  conv2dFused,
  conv2dFusedWithSums,
  conv2dInputGrad,
  conv2dWeightGrad,
  type ConvEpilogue,
  type ChannelSums,
  type Conv2dInputGradOptions,
} from './conv2d.js';
export { samePadding, type Padding } from './window.js';
export {
  convVariants,
  defineConvVariants,
  type Conv2dOptions,
  type ConvRole,
  type ConvVariant,
  type ForwardVariant,
  type WeightGradVariant,
} from './conv2d-variants.js';
export {
  batchNorm2d,
  foldBatchNorm,
  type BatchNormOptions,
  type BatchNormForward,
  type BatchNormParams,
} from './batchnorm.js';
export { channelReduce, globalAvgPool, ReduceMode, type MomentPartials, type ReduceArgs } from './reduce.js';
export { pixelShuffle, spaceToDepth, upsampleNearest, reshape } from './layout.js';
export { l1Loss } from './loss.js';
export {
  splitAttend,
  inferenceGate,
  inferencePooledGate,
  attendSplits,
  gateHiddenMax,
  type InferenceGateParams,
} from './attention.js';
export {
  layerRun,
  convLayer,
  convBn,
  batchNormLayer,
  convPlusBranch,
  foldedBatchNorm,
  type LayerMode,
  type LayerRun,
  type ConvLayer,
  type BatchNormLayer,
  type BatchNormThen,
} from './layers.js';
export { splitAttention, type SplitAttentionLayer } from './split-attention.js';
export { preparePipelines, type PipelineUse } from './prepare.js';
export { leakyRelu } from './elementwise.js';
export { maxPool2d, avgPool2d, type Pool2dOptions } from './pool.js';
export { padChannels, concat } from './channels.js';
export { dense } from './dense.js';
export { l2Normalize } from './l2norm.js';
