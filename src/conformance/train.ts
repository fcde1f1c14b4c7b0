/**
 * The train sections, for sets whose manifest has a `train` section: from fresh weights, one
 * train-mode forward, the L1 loss, backward and one Adam step, each compared with PyTorch's.
 */
import type { Gpu } from '../engine.js';
import { Tensor } from '../tensor.js';
import type { SISN } from '../nn/sisn.js';
import { Adam } from '../optim/adam.js';
import { l1Loss } from '../ops/index.js';
import type { SafeTensor, StateDict } from '../io/safetensors.js';
import { absmax, adamUpdate, elementwise, exact, relToAbsmax, type Comparison } from './compare.js';
import { f32, type Fixture, type Manifest } from './manifest.js';
import type { Checks } from './report.js';

const IO = 'train_io.safetensors';
const GRADS = 'train_grads.safetensors';
const BUFFERS = 'train_buffers_after.safetensors';
const AFTER_ADAM = 'train_params_after_adam.safetensors';

/**
 * The format's rules, from the manifest's notes: a round-off-only gradient is compared with
 * atol = 1e-6 * max|grad| over all tensors; the Adam update is compared where
 * |g_ref| > 1e-3 * max|g_ref| of the tensor, with atol 1e-6.
 */
const ROUNDOFF_GRAD_ATOL = 1e-6;
const ADAM_GRAD_FLOOR = 1e-3;
const ADAM_UPDATE_ATOL = 1e-6;

export interface ConformanceOptions {
  /** Takes the optimiser step under test (default `adam.update()`); tests pass a broken one. */
  adamStep?: (adam: Adam) => void;
}

type Train = NonNullable<Manifest['train']>;
type Tolerances = Required<Manifest['tolerance_advice']>;

function tolerances(fixture: Fixture): Tolerances {
  const t = fixture.manifest.tolerance_advice;
  for (const key of ['train_output', 'loss', 'grads', 'params_after_adam', 'train_buffers_after'] as const) {
    if (!t[key]) throw new Error(`${fixture.path('manifest.json')}: the train section needs tolerance_advice.${key}`);
  }
  return t as Tolerances;
}

/** A reference tensor by parameter name, also under DataParallel's `module.` prefix. */
function lookup(tensors: Map<string, SafeTensor>, name: string): SafeTensor | undefined {
  return tensors.get(name) ?? tensors.get(`module.${name}`);
}

export async function checkTraining(
  gpu: Gpu,
  fixture: Fixture,
  model: SISN,
  before: StateDict,
  checks: Checks,
  options: ConformanceOptions = {},
): Promise<void> {
  const train = fixture.manifest.train;
  if (!train) return;
  const present = {
    io: [checks.require(fixture, 'train output', [IO]), checks.require(fixture, 'loss', [IO])].every(Boolean),
    grads: checks.require(fixture, 'gradients', [IO, GRADS]),
    buffers: checks.require(fixture, 'BN buffers', [IO, BUFFERS]),
    adam: checks.require(fixture, 'Adam step', [IO, GRADS, AFTER_ADAM]),
  };
  if (!present.io) return;
  const tol = tolerances(fixture);
  model.training = true;
  const io = fixture.tensors(IO);
  const x = Tensor.fromArray(gpu, f32(io.get('input')!), io.get('input')!.shape);
  const target = Tensor.fromArray(gpu, f32(io.get('target')!), io.get('target')!.shape);
  model.params.zeroGrad();
  const out = model.forward(x);
  const loss = l1Loss(out, target);
  try {
    const lossValue = (await loss.read())[0];
    checks.add(
      'train output',
      elementwise(
        'train output',
        await out.read(),
        f32(io.get('output')!),
        tol.train_output.atol,
        tol.train_output.rtol,
      ),
    );
    checks.add('loss', elementwise('loss', Float32Array.of(lossValue), Float32Array.of(train.loss), 0, tol.loss.rtol));
    gpu.tape.backward(loss);
    const grads = new Map<string, Float32Array>();
    for (const [name, p] of model.params.entries()) grads.set(name, await p.grad!.read());
    if (present.grads) checks.add('gradients', ...checkGradients(fixture, train, tol, grads));
    if (present.buffers) checks.add('BN buffers', ...(await checkBuffers(fixture, model, tol)));
    if (!present.adam) return;
    const adam = new Adam(model.params, {
      lr: train.optimizer.lr,
      betas: train.optimizer.betas,
      eps: train.optimizer.eps,
    });
    try {
      (options.adamStep ?? ((a) => a.update()))(adam);
      checks.add('Adam step', ...(await checkAdam(fixture, train, tol, model, before, grads)));
    } finally {
      adam.dispose();
    }
  } finally {
    [x, target, out, loss].forEach((t) => t.dispose());
  }
}

function checkGradients(
  fixture: Fixture,
  train: Train,
  tol: Tolerances,
  grads: Map<string, Float32Array>,
): Comparison[] {
  const refs = fixture.tensors(GRADS);
  let gradAbsmax = 0;
  for (const g of refs.values()) gradAbsmax = Math.max(gradAbsmax, absmax(f32(g)));
  const roundoff = new Set(train.params_with_roundoff_only_grad ?? []);
  const out: Comparison[] = [];
  for (const [name, got] of grads) {
    const ref = lookup(refs, name);
    if (train.params_without_grad.includes(name)) {
      const nonzero = got.findIndex((v) => v !== 0);
      out.push(
        exact(
          `no grad ${name}`,
          nonzero < 0 && !ref,
          ref ? `has a gradient in ${GRADS}` : nonzero < 0 ? 'all zero' : `[${nonzero}] = ${got[nonzero]}`,
        ),
      );
    } else if (!ref) out.push(exact(`grad ${name}`, false, `missing from ${GRADS}`));
    else if (roundoff.has(name))
      out.push(elementwise(`grad ${name} (round-off only)`, got, f32(ref), ROUNDOFF_GRAD_ATOL * gradAbsmax, 0));
    else out.push(relToAbsmax(`grad ${name}`, got, f32(ref), tol.grads.rtol_to_tensor_absmax));
  }
  const unknown = [...refs.keys()].filter((k) => !grads.has(k.replace(/^module\./, '')));
  if (unknown.length) out.push(exact(`${GRADS}: tensors the model lacks`, false, unknown.slice(0, 5).join(', ')));
  return out;
}

async function checkBuffers(fixture: Fixture, model: SISN, tol: Tolerances): Promise<Comparison[]> {
  const out: Comparison[] = [];
  for (const [key, ref] of fixture.tensors(BUFFERS)) {
    const name = key.replace(/^module\./, '');
    if (name.endsWith('num_batches_tracked')) {
      const got = model.counters.get(name);
      const want = (ref.data as number[])[0];
      out.push(exact(`buffer ${name}`, got === want, `${got} vs ${want}`));
    } else {
      const t = model.buffers.get(name);
      out.push(
        t
          ? relToAbsmax(`buffer ${name}`, await t.read(), f32(ref), tol.train_buffers_after.rtol_to_tensor_absmax)
          : exact(`buffer ${name}`, false, 'no such buffer'),
      );
    }
  }
  return out;
}

async function checkAdam(
  fixture: Fixture,
  train: Train,
  tol: Tolerances,
  model: SISN,
  before: StateDict,
  grads: Map<string, Float32Array>,
): Promise<Comparison[]> {
  const refs = fixture.tensors(AFTER_ADAM);
  const refGrads = fixture.tensors(GRADS);
  const roundoff = new Set(train.params_with_roundoff_only_grad ?? []);
  const { lr, eps } = train.optimizer;
  const step = {
    lr,
    eps,
    atol: tol.params_after_adam.atol,
    updateAtol: ADAM_UPDATE_ATOL,
    gradFloor: ADAM_GRAD_FLOOR,
    gradRtol: tol.grads.rtol_to_tensor_absmax,
  };
  const out: Comparison[] = [];
  for (const [name, p] of model.params.entries()) {
    const ref = lookup(refs, name);
    const start = f32(before.get(name)!);
    const got = await p.read();
    const refGrad = lookup(refGrads, name);
    if (!ref) out.push(exact(`adam ${name}`, false, `missing from ${AFTER_ADAM}`));
    else if (train.params_without_grad.includes(name)) {
      const moved = got.findIndex((v, i) => v !== start[i] || f32(ref)[i] !== start[i]);
      out.push(
        exact(
          `adam ${name} (no gradient: unchanged)`,
          moved < 0,
          moved < 0 ? 'unchanged' : `[${moved}] ${start[moved]} -> ${got[moved]}, reference ${f32(ref)[moved]}`,
        ),
      );
    } else if (roundoff.has(name) || !refGrad)
      out.push(elementwise(`adam ${name} (round-off gradient)`, got, f32(ref), step.atol, 0));
    else
      out.push(
        adamUpdate(
          `adam ${name}`,
          { before: start, after: got, refAfter: f32(ref), refGrad: f32(refGrad), grad: grads.get(name)! },
          step,
        ),
      );
  }
  return out;
}
