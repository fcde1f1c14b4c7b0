// Shared by the convolution kernels (conv2d.wgsl, conv2d_weight.wgsl): the largest kernel size
// whose taps they hold (the host refuses larger ones, src/ops/conv2d.ts).
const KMAX: u32 = 7u;
