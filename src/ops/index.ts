export { add, sub, mul, affine, scale, relu, reluBackward, accumulate } from './elementwise.js';
