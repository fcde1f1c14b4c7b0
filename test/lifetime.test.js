// Library lifetime: what happens after gpu.dispose() (or while a read is pending), and scopes whose
// function throws.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Gpu, Tensor, add, mul, relu, l1Loss } from '../dist/index.js';

const test = suite('lifetime');

/**
 * The error `promise` rejects with (fails if it resolves).
 * @param {Promise<unknown>} promise
 * @returns {Promise<Error>}
 */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return /** @type {Error} */ (e);
  }
  throw new Error('it did not throw');
}

test(
  'reads pending at dispose, reads, uploads and new tensors after it: clear errors naming the ' + 'operation',
  async () => {
    const gpu = await Gpu.open();
    const x = Tensor.fromArray(gpu, [1, 2, 3]);
    const pending = rejection(x.read());
    const pendingSync = rejection(gpu.sync());
    gpu.dispose();
    const e = await pending;
    assert.is(e.name, 'Error');
    assert.is(e.message, 'tensor.read(): the GPU engine was disposed while the read was pending');
    assert.is((await pendingSync).message, 'gpu.sync(): the GPU engine was disposed');
    assert.is((await rejection(x.read())).message, 'tensor.read(): the GPU engine was disposed');
    assert.throws(() => Tensor.fromArray(gpu, [1, 2]), /^Tensor\.fromArray: the GPU engine was disposed$/);
    assert.throws(() => Tensor.full(gpu, [2], 1), /^Tensor\.full: the GPU engine was disposed$/);
    assert.throws(() => x.write(Float32Array.of(4, 5, 6)), /^tensor\.write\(\): the GPU engine was disposed$/);
    assert.throws(() => add(x, x), /the GPU engine was disposed/);
    x.dispose(); // still allowed: it only drops the reference
  },
);

test('gpu.scope(fn) disposes what fn made when fn throws, and drops what it recorded', async () => {
  const gpu = await Gpu.open();
  try {
    const w = Tensor.fromArray(gpu, [1, -2, 3, -4]);
    w.requiresGrad = true;
    const target = Tensor.fromArray(gpu, [0, 0, 0, 0]);
    const before = gpu.pool.inUseBytes;
    assert.throws(
      () =>
        gpu.scope(() => {
          const h = relu(mul(w, add(w, w)));
          gpu.scope(() => l1Loss(h, target)); // a nested scope that returns a tensor
          throw new Error('failed half-way');
        }),
      /failed half-way/,
    );
    assert.is(gpu.pool.inUseBytes, before, 'tensors made in the failed scope are still in use');
    assert.is(gpu.tape.length, 0, 'the failed scope left nodes on the tape');
    // The engine works on after it.
    const y = gpu.scope(() => relu(add(w, w)));
    assert.equal([...(await y.read())], [2, 0, 6, 0]);
    y.dispose();
    gpu.tape.clear();
    assert.is(gpu.pool.inUseBytes, before);
    [w, target].forEach((t) => t.dispose());
  } finally {
    gpu.dispose();
  }
});

test.run();
