#!/usr/bin/env node
// Quick-start demo: opens the WebGPU adapter and runs a small forward/backward through the engine.
// (It becomes the SISN face demo once trained weights ship.)
import { Gpu, Tensor, mul, add, relu } from '../dist/index.js';

const gpu = await Gpu.open();
try {
  console.log(`adapter: ${gpu.describe()}`);
  const x = Tensor.fromArray(gpu, [-2, -1, 0, 1, 2, 3], [2, 3]);
  x.requiresGrad = true;
  const y = relu(add(mul(x, x), x)); // relu(x^2 + x)
  const values = await y.read();
  gpu.tape.backward(y, Tensor.full(gpu, y.shape, 1));
  const grad = await x.grad.read();
  console.log(`x            = [${[...(await x.read())].join(', ')}]`);
  console.log(`relu(x^2+x)  = [${[...values].join(', ')}]`);
  console.log(`d/dx         = [${[...grad].join(', ')}]`);
} finally {
  gpu.dispose();
}
