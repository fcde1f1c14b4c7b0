// SISN.prepare compiles what SISN launches and nothing else: after it, a training step (forward,
// backward, Adam), an upscale (the folded evaluation) and an evaluation with its intermediates
// captured create no pipeline, and each prepared pipeline is launched by one of them. A fresh
// choices folder, so that no tuned variant stands in for a default kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpu, SISN, Tensor, Adam, loadSisn, l1Loss, upsampleNearest } from '../dist/index.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'sisn-prepare-'));
const previous = process.env.SISN_CACHE_DIR;
const weights = fileURLToPath(new URL('fixtures/sisn-small/weights.safetensors', import.meta.url));

/**
 * A pipeline as `kernel {constants}`.
 * @param {string} name
 * @param {Record<string, number>} [constants]
 */
const pipelineKey = (name, constants) =>
  constants ? `${name} ${JSON.stringify(Object.entries(constants).sort())}` : name;

test('SISN.prepare compiles exactly the pipelines SISN launches', async () => {
  process.env.SISN_CACHE_DIR = cacheDir;
  const gpu = await Gpu.open();
  try {
    const count = await SISN.prepare(gpu);
    const prepared = SISN.pipelines.map(({ name, constants }) =>
      pipelineKey(
        name,
        constants &&
          Object.fromEntries(
            Object.entries(constants).map(([k, v]) => [k, typeof v === 'string' ? gpu.kernels.constant(name, v) : v]),
          ),
      ),
    );
    assert.is(count, prepared.length, 'no tuned variants in a fresh choices folder');
    const created = gpu.kernels.pipelinesCreated;
    /** @type {Set<string>} */
    const launched = new Set();
    const dispatch = gpu.kernels.dispatch.bind(gpu.kernels);
    gpu.kernels.dispatch = (name, args) => {
      launched.add(pipelineKey(name, args.constants));
      dispatch(name, args);
    };

    const model = loadSisn(gpu, weights);
    /** @type {(n: number, k: number) => Float32Array} */
    const pixels = (n, k) => Float32Array.from({ length: n }, (_, i) => (i * k) % 255);
    const lr = Tensor.fromArray(gpu, pixels(2 * 3 * 16 * 16, 7), [2, 3, 16, 16]);
    const hr = Tensor.fromArray(gpu, pixels(2 * 3 * 64 * 64, 11), [2, 3, 64, 64]);
    model.training = true;
    const adam = new Adam(model.params, { lr: 1e-4 });
    const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(lr, 4)), hr));
    gpu.tape.backward(loss);
    adam.update();
    await loss.read();
    model.training = false;
    await model.upscale({ width: 12, height: 12, channels: 3, data: new Uint8Array(12 * 12 * 3).fill(90) });
    const captured = gpu.noGrad(() => model.forward(upsampleNearest(lr, 4), () => {}));
    await captured.read();
    [loss, lr, hr, captured].forEach((t) => t.dispose());
    model.dispose();

    assert.is(gpu.kernels.pipelinesCreated, created, 'a pipeline was compiled after prepare');
    const unused = prepared.filter((p) => !launched.has(p));
    assert.equal(unused, [], `prepared but never launched: ${unused.join(', ')}`);
    const unprepared = [...launched].filter((p) => !prepared.includes(p));
    assert.equal(unprepared, [], `launched but not prepared: ${unprepared.join(', ')}`);
  } finally {
    gpu.dispose();
    if (previous === undefined) delete process.env.SISN_CACHE_DIR;
    else process.env.SISN_CACHE_DIR = previous;
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test.run();
