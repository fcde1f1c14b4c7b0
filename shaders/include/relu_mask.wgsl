// How BatchNorm's backward kernels (reduce.wgsl's bn_backward, batchnorm.wgsl's backward_input)
// count the gradient through a fused ReLU, as their `masked` uniform: not at all (no ReLU), where
// the ReLU's output is > 0, or where the normalised input (recomputed from x) is > 0. The host
// passes these by name (src/ops/reduce.ts, ReluMask).
const MASK_NONE: u32 = 0u;
const MASK_OUTPUT: u32 = 1u;
const MASK_FROM_INPUT: u32 = 2u;
