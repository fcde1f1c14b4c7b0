/**
 * Conformance of this engine's SISN against a PyTorch fixture set (format `sisn-oracle-fixtures/1`,
 * see `manifest.json` in any set): eval output and intermediates, train-mode output, loss, every
 * gradient (and none for the unused `skip` weights), BN buffers after the train forward, and every
 * parameter after one Adam step, each with the manifest's tolerances.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../engine.js';
import { Tensor } from '../tensor.js';
import { SISN } from '../nn/sisn.js';
import { Adam } from '../optim/adam.js';
import { l1Loss } from '../ops/index.js';
import { parseSafetensors, type SafeTensor } from '../io/safetensors.js';
import { inferConfig, loadStateDict } from '../nn/sisn-weights.js';
import { readStateDict, stripModulePrefix } from '../io/weights.js';

export interface Check {
  /** What was compared, e.g. `grad body.0.IA.conv1.weight`. */
  name: string;
  /** Worst error over the tolerance it is allowed (<= 1 passes). */
  ratio: number;
  detail: string;
}

export interface ConformanceReport {
  dir: string;
  config: string;
  checks: Check[];
  failures: Check[];
}

interface Manifest {
  format: string;
  model: { scale: number; groups_G: number; blocks_I: number; channels_C: number };
  train?: { loss: number; optimizer: { lr: number; betas: [number, number]; eps: number }; params_without_grad: string[]; params_with_roundoff_only_grad?: string[] };
  tolerance_advice: {
    eval_output: { atol: number; rtol: number };
    eval_intermediates: { rtol_to_tensor_absmax: number };
    train_output?: { atol: number; rtol: number };
    loss?: { rtol: number };
    grads?: { rtol_to_tensor_absmax: number };
    params_after_adam?: { atol: number };
    train_buffers_after?: { rtol_to_tensor_absmax: number };
  };
}

function load(dir: string, file: string): Map<string, SafeTensor> {
  return parseSafetensors(readFileSync(join(dir, file)), join(dir, file)).tensors;
}

function f32(t: SafeTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

/** Worst |a-b| / (atol + rtol*|ref|) with the element that gave it. */
function elementwise(name: string, got: Float32Array, ref: Float32Array, atol: number, rtol: number): Check {
  if (got.length !== ref.length) return { name, ratio: Infinity, detail: `${got.length} values, expected ${ref.length}` };
  let ratio = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    if (!(r <= ratio)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { name, ratio, detail: `worst [${at}] ${got[at]} vs ${ref[at]} (atol ${atol}, rtol ${rtol})` };
}

/** |a-b| <= rtol * max|ref| of the tensor. */
function relToAbsmax(name: string, got: Float32Array, ref: Float32Array, rtol: number, floor = 0): Check {
  let absmax = floor;
  for (const v of ref) absmax = Math.max(absmax, Math.abs(v));
  return elementwise(name, got, ref, rtol * absmax || Number.MIN_VALUE, 0);
}

function buildModel(gpu: Gpu, dir: string): SISN {
  const dict = stripModulePrefix(readStateDict(join(dir, 'weights.safetensors')));
  const model = new SISN(gpu, inferConfig(dict));
  loadStateDict(model, dict);
  return model;
}

export async function checkConformance(gpu: Gpu, dir: string): Promise<ConformanceReport> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  if (manifest.format !== 'sisn-oracle-fixtures/1') throw new Error(`${dir}: unknown fixture format ${manifest.format}`);
  const tol = manifest.tolerance_advice;
  const checks: Check[] = [];

  // Eval mode: output and intermediates.
  let model = buildModel(gpu, dir);
  const m = manifest.model;
  const config = model.config;
  if (config.scale !== m.scale || config.groups !== m.groups_G || config.blocks !== m.blocks_I || config.channels !== m.channels_C) {
    throw new Error(`${dir}: weights give ${JSON.stringify(config)}, the manifest says ${JSON.stringify(m)}`);
  }
  const evalIo = load(dir, 'eval_io.safetensors');
  const intermediates = existsSync(join(dir, 'eval_intermediates.safetensors')) ? load(dir, 'eval_intermediates.safetensors') : new Map<string, SafeTensor>();
  const captured = new Map<string, Tensor>();
  const input = Tensor.fromArray(gpu, f32(evalIo.get('input')!), evalIo.get('input')!.shape);
  // Capturing intermediates runs the unfused network; the output is checked on both paths.
  const capturedOutput = gpu.noGrad(() => model.forward(input, (name, t) => intermediates.has(name) && !captured.has(name) && captured.set(name, t.retain())));
  const output = gpu.noGrad(() => model.forward(input));
  checks.push(elementwise('eval output', await output.read(), f32(evalIo.get('output')!), tol.eval_output.atol, tol.eval_output.rtol));
  checks.push(elementwise('eval output (unfused, capturing)', await capturedOutput.read(), f32(evalIo.get('output')!), tol.eval_output.atol, tol.eval_output.rtol));
  capturedOutput.dispose();
  for (const [name, ref] of intermediates) {
    const t = captured.get(name);
    if (!t) checks.push({ name: `eval ${name}`, ratio: Infinity, detail: 'not produced by the model' });
    else checks.push(relToAbsmax(`eval ${name}`, await t.read(), f32(ref), tol.eval_intermediates.rtol_to_tensor_absmax));
  }
  for (const t of captured.values()) t.release();
  [input, output].forEach((t) => t.dispose());

  // Train mode: one forward, L1 loss, backward, one Adam step, from fresh weights.
  if (manifest.train && existsSync(join(dir, 'train_io.safetensors'))) {
    model.dispose();
    model = buildModel(gpu, dir);
    model.training = true;
    const io = load(dir, 'train_io.safetensors');
    const x = Tensor.fromArray(gpu, f32(io.get('input')!), io.get('input')!.shape);
    const target = Tensor.fromArray(gpu, f32(io.get('target')!), io.get('target')!.shape);
    model.params.zeroGrad();
    const out = model.forward(x);
    const loss = l1Loss(out, target);
    const lossValue = (await loss.read())[0];
    checks.push(elementwise('train output', await out.read(), f32(io.get('output')!), tol.train_output!.atol, tol.train_output!.rtol));
    checks.push(elementwise('loss', Float32Array.of(lossValue), Float32Array.of(manifest.train.loss), 0, tol.loss!.rtol));
    gpu.tape.backward(loss);
    const grads = load(dir, 'train_grads.safetensors');
    let gradAbsmax = 0;
    for (const g of grads.values()) for (const v of f32(g)) gradAbsmax = Math.max(gradAbsmax, Math.abs(v));
    const roundoff = new Set(manifest.train.params_with_roundoff_only_grad ?? []);
    for (const [name, p] of model.params.entries()) {
      const got = await p.grad!.read();
      const ref = grads.get(name) ?? grads.get(`module.${name}`);
      if (manifest.train.params_without_grad.includes(name)) {
        const nonzero = got.findIndex((v) => v !== 0);
        checks.push({ name: `no grad ${name}`, ratio: nonzero < 0 ? 0 : Infinity, detail: nonzero < 0 ? 'all zero' : `[${nonzero}] = ${got[nonzero]}` });
      } else if (!ref) checks.push({ name: `grad ${name}`, ratio: Infinity, detail: 'missing from train_grads' });
      else if (roundoff.has(name)) checks.push(elementwise(`grad ${name} (round-off only)`, got, f32(ref), 1e-6 * gradAbsmax, 0));
      else checks.push(relToAbsmax(`grad ${name}`, got, f32(ref), tol.grads!.rtol_to_tensor_absmax));
    }
    const buffersAfter = load(dir, 'train_buffers_after.safetensors');
    for (const [name, ref] of buffersAfter) {
      if (name.endsWith('num_batches_tracked')) {
        const got = model.counters.get(name);
        checks.push({ name: `buffer ${name}`, ratio: got === (ref.data as number[])[0] ? 0 : Infinity, detail: `${got} vs ${(ref.data as number[])[0]}` });
      } else {
        const t = model.buffers.get(name);
        if (!t) checks.push({ name: `buffer ${name}`, ratio: Infinity, detail: 'no such buffer' });
        else checks.push(relToAbsmax(`buffer ${name}`, await t.read(), f32(ref), tol.train_buffers_after!.rtol_to_tensor_absmax));
      }
    }
    const o = manifest.train.optimizer;
    const adam = new Adam(model.params, { lr: o.lr, betas: o.betas, eps: o.eps });
    adam.update();
    const after = load(dir, 'train_params_after_adam.safetensors');
    for (const [name, p] of model.params.entries()) {
      const ref = after.get(name);
      if (!ref) checks.push({ name: `adam ${name}`, ratio: Infinity, detail: 'missing from train_params_after_adam' });
      else checks.push(elementwise(`adam ${name}`, await p.read(), f32(ref), tol.params_after_adam!.atol, 0));
    }
    adam.dispose();
    [x, target, out, loss].forEach((t) => t.dispose());
  }
  model.dispose();
  await gpu.sync();
  return { dir, config: JSON.stringify(config), checks, failures: checks.filter((c) => !(c.ratio <= 1)) };
}
