// Seeded random programs over the public API, each run on the GPU and on a CPU mirror of the same
// program (float64, test/reference.js), for test/sequence.test.js and scripts/sequence.mjs.
//
// A program makes tensors (random, full, views), writes and fills them, runs convolutions (with and
// without gradients, fused epilogues, folded BatchNorms), BatchNorm in training and eval mode,
// elementwise ops, scopes, backward passes, Adam steps and zeroGrad on parameter sets, and loads
// random state dicts into a tiny SISN whose pure-inference forward (packed weights and BatchNorm
// folds cached by the engine) must equal its uncached forward after every write. Every op's result
// is compared with the mirror (read before its memory is next written or freed, else at the end),
// and so are, at the end, every live tensor and gradient; then everything is disposed and the
// pool's in-use bytes must be back where they started. Tensors are tiny (a few hundred values) so
// that programs are cheap.
import { mulberry32 } from './mulberry32.js';
import * as ref from './reference.js';
import {
  Tensor,
  ParameterSet,
  Adam,
  SISN,
  conv2d,
  conv2dFused,
  batchNorm2d,
  foldBatchNorm,
  add,
  mul,
  relu,
  reshape,
  l1Loss,
  loadStateDict,
} from '../dist/index.js';

const EPS = 1e-5;
const MOMENTUM = 0.1;
/** @type {import('../dist/index.js').SisnConfig} */
const TINY_SISN = { scale: 2, groups: 1, blocks: 1, channels: 4 };
/** Entries of the tiny SISN that programs use directly (weights and whole BatchNorms). */
const MODEL_WEIGHTS = [
  'head.1.weight',
  'body.0.body.0.conv1.weight',
  'body.0.body.0.conv2.conv.weight',
  'body.0.body.1.weight',
  'tail.1.weight',
];
const MODEL_BIASES = ['body.0.body.1.bias', 'tail.1.bias'];
const MODEL_BATCHNORMS = ['body.0.body.0.bn1.', 'body.0.IA.bn3.'];

/**
 * @typedef {import('../dist/index.js').Gpu} Gpu
 * @typedef {readonly number[]} Shape
 * @typedef {{ data: Float64Array, version: number, checked: number }} Memory
 * @typedef {{ memory: Memory, version: number, name: string }} SavedMirror
 * @typedef {(g: Float64Array) => ArrayLike<number>[]} MirrorRule
 * @typedef {{ id: number, inputs: Entry[], backward: MirrorRule, saved: SavedMirror[] }} NodeMirror
 * @typedef {'program' | 'set' | 'model'} Owner
 * @typedef {{
 *   t: Tensor, shape: number[], memory: Memory, owner: Owner, positive: boolean, name: string,
 *   requiresGrad: boolean, node: NodeMirror | null, grad: Float64Array | null, dropped?: boolean,
 * }} Entry
 * @typedef {{ gamma: Entry, beta: Entry, mean: Entry, variance: Entry }} BatchNormMirror
 * @typedef {{
 *   params: ParameterSet, adam: Adam | null, entries: Map<string, Entry>,
 *   state: Map<Entry, { m: Float32Array, v: Float32Array }>,
 * }} SetMirror
 */

/**
 * @typedef {'conv' | 'bn' | 'elementwise' | 'fused' | 'write' | 'fill' | 'view' | 'dispose' | 'scope'
 *   | 'backward' | 'adam' | 'zeroGrad' | 'set' | 'model'} StepName
 */

/** @param {Shape} shape */
const size = (shape) => shape.reduce((a, b) => a * b, 1);
/** @param {Shape} a @param {Shape} b */
const sameShape = (a, b) => a.length === b.length && a.every((d, i) => d === b[i]);
/** @param {Shape} shape */
const fmt = (shape) => `[${shape.join(', ')}]`;
/** @param {boolean} grad */
const underNoGrad = (grad) => (grad ? '' : ' under noGrad');
/**
 * A shape usable as a conv weight here: 1x1 or 3x3 (SISN's kernels; each other size compiles its
 * own pipelines, seconds on SwiftShader, for no other code path).
 */
/** @param {Shape} shape */
const isKernel = (shape) => shape.length === 4 && shape[2] === shape[3] && (shape[2] === 1 || shape[2] === 3);

/** A program's failure: what went wrong, and the steps it ran. */
export class ProgramFailure extends Error {}

/**
 * Runs program `seed` on `gpu`. Resolves to { checks: comparisons made, steps: what it did };
 * rejects with a ProgramFailure naming the seed, the mismatch and the program's steps.
 */
/**
 * @param {Gpu} gpu
 * @param {number} seed
 * @returns {Promise<{ checks: number, steps: string[] }>}
 */
export async function runProgram(gpu, seed) {
  const program = new Program(gpu, seed);
  try {
    await program.run();
  } catch (e) {
    await program.cleanUp().catch(() => {});
    const steps = program.trace.map((s, i) => `  ${i + 1}. ${s}`).join('\n');
    const message = e instanceof Error ? e.message : String(e);
    throw new ProgramFailure(`program ${seed}: ${message}\nits steps:\n${steps}`, { cause: e });
  }
  return { checks: program.checks, steps: program.trace };
}

class Program {
  /** @param {Gpu} gpu @param {number} seed */
  constructor(gpu, seed) {
    this.gpu = gpu;
    this.seed = seed;
    this.next = mulberry32(seed);
    /** @type {string[]} */
    this.trace = [];
    /** @type {Entry[]} Live tensors and their mirrors (see `entry`). */
    this.entries = [];
    /** @type {BatchNormMirror[]} BatchNorms: entries of one channel count. */
    this.batchNorms = [];
    /** @type {SetMirror[]} Parameter sets (the tiny SISN's among them). */
    this.sets = [];
    /** @type {SISN | null} */
    this.sisn = null;
    /** @type {[Promise<Float32Array>, Float64Array, string][]} Reads started: [promise, expected, what]. */
    this.pending = [];
    /** @type {Map<Memory, { want: Float64Array, what: string }>} Results not read yet (see expectEntry). */
    this.unread = new Map();
    /** @type {Set<Entry>[]} Entries made inside each open scope. */
    this.scopes = [];
    this.nodeCount = 0;
    this.checks = 0;
    this.startBytes = gpu.pool.inUseBytes;
  }

  /** The tiny SISN, once made. */
  get tiny() {
    if (!this.sisn) throw new Error('no SISN made yet');
    return this.sisn;
  }

  // ---- random choices
  /** @param {number} lo @param {number} hi */
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** @template T @param {readonly T[]} list @returns {T} */
  pick(list) {
    return list[Math.floor(this.next() * list.length)];
  }
  /** @param {number} p */
  chance(p) {
    return this.next() < p;
  }
  /** @param {number} k */
  square(k) {
    return [k, k];
  }
  /** @param {number} n */
  values(n, positive = false) {
    return Float32Array.from({ length: n }, () => (positive ? 0.2 + 1.8 * this.next() : 2 * this.next() - 1));
  }

  // ---- mirrors
  /**
   * A tensor and its mirror: `memory` (values and a version bumped by every write, shared by the
   * views of one storage), requiresGrad, the mirror of the tape node that made it, and the
   * mirror of its `.grad`.
   */
  /**
   * @param {Tensor} t
   * @param {ArrayLike<number> | null} data
   * @param {{ memory?: Memory | null, owner?: Owner, positive?: boolean, name?: string }} [options]
   * @returns {Entry}
   */
  entry(t, data, { memory = null, owner = 'program', positive = false, name = '' } = {}) {
    const e = {
      t,
      shape: [...t.shape],
      memory: memory ?? { data: Float64Array.from(data ?? []), version: 0, checked: -1 },
      owner,
      positive,
      name: name || `t${this.entries.length}`,
      requiresGrad: t.requiresGrad,
      node: null,
      grad: null,
    };
    this.entries.push(e);
    this.scopes[this.scopes.length - 1]?.add(e);
    return e;
  }
  /** @param {Entry} e @param {ArrayLike<number>} data */
  written(e, data) {
    e.memory.data.set(data);
    e.memory.version++;
  }
  /**
   * The entries the program may still use: not disposed by it or by a scope (a tensor the tape
   * saved stays alive after that, but is no longer the program's).
   */
  /** @param {(e: Entry) => boolean} [filter] */
  live(filter = () => true) {
    return this.entries.filter((e) => !e.dropped && e.t.alive && filter(e));
  }
  /** @param {Entry} e */
  drop(e) {
    e.dropped = true;
  }
  /** Starts reading `t` now (later writes do not change what is read) to compare with `want` at the end. */
  /** @param {Tensor} t @param {ArrayLike<number>} want @param {string} what */
  expect(t, want, what) {
    this.pending.push([t.read(), Float64Array.from(want), what]);
  }
  /**
   * `expect` for an entry's values, read when its memory is next written or freed (`settle`) or at
   * the end: a read is a submit and a wait, and most results are never written again.
   */
  /** @param {Entry} e @param {string} what */
  expectEntry(e, what) {
    this.unread.set(e.memory, { want: Float64Array.from(e.memory.data), what: `${e.name} ${what}` });
    e.memory.checked = e.memory.version;
  }
  /** Starts the reads the entries' memories still owe, before a write or dispose changes them. */
  /** @param {Entry[]} entries */
  settle(...entries) {
    for (const e of entries) {
      const owed = this.unread.get(e.memory);
      if (!owed) continue;
      this.unread.delete(e.memory);
      this.expect(e.t, owed.want, owed.what);
    }
  }
  /** @param {ArrayLike<number>} got @param {ArrayLike<number>} want @param {string} what */
  compare(got, want, what) {
    this.checks++;
    if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
    let scale = 1;
    for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
      if (!(Math.abs(got[i] - want[i]) <= 2e-3 * scale)) {
        throw new Error(`${what}: element ${i} is ${got[i]}, expected ${want[i]} (scale ${scale.toFixed(3)})`);
      }
    }
  }
  /** Records the mirror of a tape node when the GPU recorded one (gradients on, an input needing one). */
  /** @param {Entry} out @param {Entry[]} inputs @param {MirrorRule} backward @param {Entry[]} saved */
  record(out, inputs, backward, saved) {
    out.requiresGrad = out.t.requiresGrad;
    if (!out.requiresGrad) return;
    out.node = {
      id: this.nodeCount++,
      inputs,
      backward,
      saved: saved.map((e) => ({ memory: e.memory, version: e.memory.version, name: e.name })),
    };
  }
  /** Runs `fn` with gradients on or off as the program chose. */
  /** @template T @param {boolean} grad @param {() => T} fn @returns {T} */
  mode(grad, fn) {
    return grad ? fn() : this.gpu.noGrad(fn);
  }

  // ---- making operands
  /** @param {Shape} shape */
  tensor(shape, { positive = false, requiresGrad = false } = {}) {
    const data = this.values(size(shape), positive);
    const how = this.chance(0.2) ? 'full' : 'fromArray';
    if (how === 'full') data.fill(this.pick(positive ? [0.5, 1, 2] : [-1.5, -0.5, 0.25, 1, 2]));
    const t = how === 'full' ? Tensor.full(this.gpu, shape, data[0]) : Tensor.fromArray(this.gpu, data, shape);
    t.requiresGrad = requiresGrad;
    const e = this.entry(t, data, { positive });
    this.trace.push(`${e.name} = Tensor.${how}(${fmt(shape)})${requiresGrad ? ', requiresGrad' : ''}`);
    return e;
  }
  image(channels = this.int(1, 4), minSide = 1) {
    const shape = [this.int(1, 3), channels, this.int(minSide, 5), this.int(minSide, 5)];
    return this.tensor(shape, { requiresGrad: this.chance(0.3) });
  }
  /** @param {(e: Entry) => boolean} filter @param {() => Entry} make */
  liveOr(filter, make) {
    const found = this.live(filter);
    return found.length && this.chance(0.8) ? this.pick(found) : make();
  }
  /** @param {number} channels @returns {BatchNormMirror} */
  batchNorm(channels) {
    const found = this.batchNorms.filter(
      (b) => b.gamma.shape[0] === channels && [b.gamma, b.beta, b.mean, b.variance].every((e) => e.t.alive),
    );
    if (found.length && this.chance(0.8)) return this.pick(found);
    const set = this.parameterSet([
      { name: 'gamma', shape: [channels] },
      { name: 'beta', shape: [channels] },
    ]);
    const bn = {
      gamma: /** @type {Entry} */ (set.entries.get('gamma')),
      beta: /** @type {Entry} */ (set.entries.get('beta')),
      mean: this.tensor([channels]),
      variance: this.tensor([channels], { positive: true }),
    };
    this.batchNorms.push(bn);
    return bn;
  }
  /** A parameter set with random values, and its entries (not disposable one by one). */
  /** @param {{ name: string, shape: number[] }[]} specs @returns {SetMirror} */
  parameterSet(specs) {
    const params = new ParameterSet(this.gpu, specs);
    const set = { params, adam: null, entries: new Map(), state: new Map() };
    for (const s of specs) {
      const data = this.values(size(s.shape));
      params.set(s.name, data);
      const e = this.entry(params.get(s.name), data, { owner: 'set', name: `p${this.sets.length}.${s.name}` });
      e.grad = new Float64Array(data.length);
      set.entries.set(s.name, e);
    }
    this.sets.push(set);
    this.trace.push(
      `p${this.sets.length - 1} = new ParameterSet(${specs.map((s) => s.name + fmt(s.shape)).join(', ')})`,
    );
    return set;
  }

  // ---- the program
  async run() {
    const steps = this.int(3, 9);
    for (let i = 0; i < steps; i++) await this.step(false);
    await this.finish();
  }

  /** @param {boolean} inScope */
  async step(inScope) {
    /** @type {[StepName, number][]} */
    const kinds = [
      ['conv', 5],
      ['bn', 3],
      ['elementwise', 2],
      ['fused', 1.5],
      ['write', 2],
      ['fill', 1],
      ['view', 1],
      ['dispose', 1.5],
      ['scope', inScope ? 0 : 1],
      ['backward', inScope ? 0 : 3],
      ['adam', inScope ? 0 : 1.5],
      ['zeroGrad', inScope ? 0 : 0.5],
      ['set', 1],
      ['model', inScope ? 0 : 0.35],
    ];
    let r = this.next() * kinds.reduce((s, [, w]) => s + w, 0);
    const kind = (kinds.find(([, w]) => (r -= w) < 0) ?? kinds[0])[0];
    await this[kind]();
  }

  conv() {
    const grad = this.chance(0.5);
    const w = this.liveOr(
      (e) => isKernel(e.shape),
      () =>
        this.tensor([this.int(1, 4), this.int(1, 3), ...this.square(this.pick([1, 3]))], {
          requiresGrad: this.chance(0.3),
        }),
    );
    const [O, Cg, K] = w.shape;
    const groups = this.pick([1, 2, 4].filter((g) => O % g === 0));
    const pad = this.int(0, K - 1);
    const minSide = Math.max(1, K - 2 * pad);
    const x = this.liveOr(
      (e) => e.shape.length === 4 && e.shape[1] === Cg * groups && e.shape[2] >= minSide && e.shape[3] >= minSide,
      () => this.image(Cg * groups, minSide),
    );
    const bias = this.chance(0.5)
      ? this.liveOr(
          (e) => sameShape(e.shape, [O]),
          () => this.tensor([O]),
        )
      : null;
    const t = this.mode(grad, () => conv2d(x.t, w.t, bias?.t ?? null, { padding: pad, groups }));
    const shape = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    const [xv, wv, bv] = [x.memory.data, w.memory.data, bias?.memory.data];
    const out = ref.conv2d(xv, shape, wv, [O, Cg, K], bv, pad, groups);
    const e = this.entry(t, out);
    this.trace.push(
      `${e.name} = conv2d(${x.name}, ${w.name}, ${bias?.name ?? 'null'}, ` +
        `{ padding: ${pad}, groups: ${groups} })${underNoGrad(grad)}`,
    );
    this.expectEntry(e, '(conv2d)');
    const [xs, ws] = [Float64Array.from(xv), Float64Array.from(wv)];
    const inputs = bias ? [x, w, bias] : [x, w];
    this.record(
      e,
      inputs,
      (g) => {
        const [B, , Ho, Wo] = t.shape;
        const db = new Float64Array(O);
        for (let b = 0; b < B; b++)
          for (let o = 0; o < O; o++) for (let i = 0; i < Ho * Wo; i++) db[o] += g[(b * O + o) * Ho * Wo + i];
        return [
          ref.conv2dInputGrad(g, shape, ws, [O, Cg, K], pad, groups),
          ref.conv2dWeightGrad(xs, shape, g, [O, Cg, K], pad, groups),
          db,
        ];
      },
      [x, w],
    );
  }

  bn() {
    const grad = this.chance(0.5);
    const training = this.chance(0.5);
    const x = this.liveOr(
      (e) => e.shape.length === 4 && (!training || e.shape[0] * e.shape[2] * e.shape[3] >= 2),
      () => this.image(undefined, training ? 2 : 1),
    );
    const C = x.shape[1];
    const bn = this.batchNorm(C);
    const fuseRelu = this.chance(0.4);
    const residual = this.chance(0.3)
      ? this.liveOr(
          (e) => sameShape(e.shape, x.shape),
          () => this.tensor(x.shape),
        )
      : null;
    const options = { training, relu: fuseRelu, ...(residual ? { residual: residual.t } : {}) };
    if (training) this.settle(bn.mean, bn.variance);
    const t = this.mode(grad, () => batchNorm2d(x.t, bn.gamma.t, bn.beta.t, bn.mean.t, bn.variance.t, options));
    const [B, , H, W] = x.shape;
    const xs = Float64Array.from(x.memory.data);
    const gamma = Float64Array.from(bn.gamma.memory.data);
    const r = ref.batchNorm(xs, [B, C, H, W], gamma, bn.beta.memory.data, {
      training,
      runningMean: bn.mean.memory.data,
      runningVar: bn.variance.memory.data,
    });
    const pre = Float64Array.from(r.out, (v, i) => v + (residual ? residual.memory.data[i] : 0));
    const out = fuseRelu ? pre.map((v) => Math.max(v, 0)) : pre;
    const e = this.entry(t, out);
    this.trace.push(
      `${e.name} = batchNorm2d(${x.name}, bn of ${bn.gamma.name}, { training: ${training}, relu: ${fuseRelu}, ` +
        `residual: ${residual?.name ?? 'none'} })${underNoGrad(grad)}`,
    );
    this.expectEntry(e, '(batchNorm2d)');
    if (training) {
      const M = B * H * W;
      const mean = bn.mean.memory.data.map((v, c) => (1 - MOMENTUM) * v + MOMENTUM * r.mean[c]);
      const variance = bn.variance.memory.data.map(
        (v, c) => (1 - MOMENTUM) * v + (MOMENTUM * r.variance[c] * M) / (M - 1),
      );
      this.written(bn.mean, mean);
      this.written(bn.variance, variance);
    }
    const inputs = residual ? [x, bn.gamma, bn.beta, residual] : [x, bn.gamma, bn.beta];
    this.record(
      e,
      inputs,
      (gOut) => {
        const g = fuseRelu ? gOut.map((v, i) => (out[i] > 0 ? v : 0)) : gOut;
        const inner = H * W;
        const dx = new Float64Array(xs.length);
        const dgamma = new Float64Array(C);
        const dbeta = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          const inv = 1 / Math.sqrt(r.variance[c] + EPS);
          let sumG = 0;
          let sumGx = 0;
          for (let b = 0; b < B; b++)
            for (let i = 0; i < inner; i++) {
              const j = (b * C + c) * inner + i;
              sumG += g[j];
              sumGx += g[j] * (xs[j] - r.mean[c]) * inv;
            }
          dgamma[c] = sumGx;
          dbeta[c] = sumG;
          const M = B * inner;
          for (let b = 0; b < B; b++)
            for (let i = 0; i < inner; i++) {
              const j = (b * C + c) * inner + i;
              const xhat = (xs[j] - r.mean[c]) * inv;
              dx[j] = training ? gamma[c] * inv * (g[j] - sumG / M - (xhat * sumGx) / M) : gamma[c] * inv * g[j];
            }
        }
        return [dx, dgamma, dbeta, g];
      },
      fuseRelu && residual ? [x, bn.gamma, e] : [x, bn.gamma],
    );
  }

  elementwise() {
    const grad = this.chance(0.5);
    const op = this.pick(['add', 'mul', 'relu']);
    const a = this.liveOr(
      () => true,
      () => this.image(),
    );
    if (op === 'relu') {
      const t = this.mode(grad, () => relu(a.t));
      const out = a.memory.data.map((v) => Math.max(v, 0));
      const e = this.entry(t, out);
      this.trace.push(`${e.name} = relu(${a.name})${underNoGrad(grad)}`);
      this.expectEntry(e, '(relu)');
      this.record(e, [a], (g) => [g.map((v, i) => (out[i] > 0 ? v : 0))], [e]);
      return;
    }
    const b = this.liveOr(
      (e) => sameShape(e.shape, a.shape),
      () => this.tensor(a.shape),
    );
    const [av, bv] = [Float64Array.from(a.memory.data), Float64Array.from(b.memory.data)];
    const t = this.mode(grad, () => (op === 'add' ? add : mul)(a.t, b.t));
    const out = av.map((v, i) => (op === 'add' ? v + bv[i] : v * bv[i]));
    const e = this.entry(t, out);
    this.trace.push(`${e.name} = ${op}(${a.name}, ${b.name})${underNoGrad(grad)}`);
    this.expectEntry(e, `(${op})`);
    if (op === 'add') this.record(e, [a, b], (g) => [g, g], []);
    else this.record(e, [a, b], (g) => [g.map((v, i) => v * bv[i]), g.map((v, i) => v * av[i])], [a, b]);
  }

  /** conv2dFused with a folded eval BatchNorm, a residual and a ReLU (inference only). */
  fused() {
    const w = this.liveOr(
      (e) => isKernel(e.shape),
      () => this.tensor([this.int(1, 4), this.int(1, 3), ...this.square(this.pick([1, 3]))]),
    );
    const [O, Cg, K] = w.shape;
    const groups = this.pick([1, 2].filter((g) => O % g === 0));
    const pad = (K - 1) / 2;
    const x = this.liveOr(
      (e) => e.shape.length === 4 && e.shape[1] === Cg * groups,
      () => this.image(Cg * groups),
    );
    const bn = this.batchNorm(O);
    const bias = this.chance(0.5)
      ? this.liveOr(
          (e) => sameShape(e.shape, [O]),
          () => this.tensor([O]),
        )
      : null;
    const outShape = [x.shape[0], O, x.shape[2], x.shape[3]];
    const residual = this.chance(0.4)
      ? this.liveOr(
          (e) => sameShape(e.shape, outShape),
          () => this.tensor(outShape),
        )
      : null;
    const fuseRelu = this.chance(0.5);
    const t = this.gpu.noGrad(() => {
      const { scale, shift } = foldBatchNorm(bn.gamma.t, bn.beta.t, bn.mean.t, bn.variance.t, bias?.t ?? null);
      const y = conv2dFused(x.t, w.t, shift, { padding: pad, groups, scale, residual: residual?.t, relu: fuseRelu });
      [scale, shift].forEach((s) => s.dispose());
      return y;
    });
    const conv = ref.conv2d(x.memory.data, x.shape, w.memory.data, [O, Cg, K], bias?.memory.data, pad, groups);
    const inner = outShape[2] * outShape[3];
    const out = conv.map((v, j) => {
      const c = Math.floor(j / inner) % O;
      const y =
        ((v - bn.mean.memory.data[c]) / Math.sqrt(bn.variance.memory.data[c] + EPS)) * bn.gamma.memory.data[c] +
        bn.beta.memory.data[c] +
        (residual ? residual.memory.data[j] : 0);
      return fuseRelu ? Math.max(y, 0) : y;
    });
    const e = this.entry(t, out);
    this.trace.push(
      `${e.name} = conv2dFused(${x.name}, ${w.name}, folded bn of ${bn.gamma.name}, bias ${bias?.name ?? 'none'}, ` +
        `residual ${residual?.name ?? 'none'}, relu ${fuseRelu})`,
    );
    this.expectEntry(e, '(conv2dFused)');
  }

  write() {
    const e = this.liveOr(
      () => true,
      () => this.image(),
    );
    const data = this.values(size(e.shape), e.positive);
    this.settle(e);
    const set = this.sets.find((s) => [...s.entries.values()].includes(e));
    if (set && this.chance(0.5)) {
      set.params.set(e.t.name, data);
      this.trace.push(`ParameterSet.set('${e.t.name}') (${e.name})`);
    } else {
      e.t.write(data);
      this.trace.push(`${e.name}.write(...)`);
    }
    this.written(e, data);
  }

  fill() {
    const e = this.liveOr(
      () => true,
      () => this.image(),
    );
    const v = Math.fround(e.positive ? this.pick([0.5, 1, 2]) : this.pick([-1.5, -0.5, 0.25, 1, 2]));
    this.settle(e);
    e.t.fill(v);
    this.written(e, new Float64Array(e.memory.data.length).fill(v));
    this.trace.push(`${e.name}.fill(${v})`);
  }

  view() {
    const grad = this.chance(0.5);
    const e = this.liveOr(
      () => true,
      () => this.image(),
    );
    const n = size(e.shape);
    // Kept small as a convolution's batch or channels ([n, 1, 1, 1] may become either).
    const shape = this.pick(n <= 16 ? [[n], [1, n], [n, 1, 1, 1], [1, 1, 1, n]] : [[n], [1, n], [1, 1, 1, n]]);
    const t = this.mode(grad, () => reshape(e.t, shape));
    const v = this.entry(t, null, { memory: e.memory, positive: e.positive });
    this.trace.push(`${v.name} = reshape(${e.name}, ${fmt(shape)})${underNoGrad(grad)}`);
    this.record(v, [e], (g) => [g], []);
  }

  dispose() {
    const candidates = this.live((e) => e.owner === 'program');
    if (!candidates.length) return;
    const e = this.pick(candidates);
    this.settle(e);
    e.t.dispose();
    this.drop(e);
    this.trace.push(`${e.name}.dispose()`);
  }

  scope() {
    /** @type {Set<Entry>} */
    const mine = new Set();
    this.trace.push('gpu.scope(() => {');
    this.scopes.push(mine);
    /** @type {Entry | null} */
    let kept = null;
    try {
      this.gpu.scope(() => {
        // Synchronous steps only: a scope holds no await.
        const steps = this.int(1, 3);
        for (let i = 0; i < steps; i++)
          this[this.pick(/** @type {const} */ (['conv', 'bn', 'elementwise', 'write', 'fill', 'view', 'dispose']))]();
        const made = [...mine].filter((e) => e.owner === 'program' && e.t.alive);
        kept = made.length && this.chance(0.7) ? this.pick(made) : null;
        this.settle(...made.filter((e) => e !== kept));
        return kept?.t;
      });
    } finally {
      this.scopes.pop();
    }
    // (Set inside the scope's function, which the checker does not follow.)
    const returned = /** @type {Entry | null} */ (kept);
    if (returned) this.scopes[this.scopes.length - 1]?.add(returned);
    this.trace.push(`}) returning ${returned?.name ?? 'nothing'}`);
    for (const e of mine) if (e.owner === 'program' && e !== returned) this.drop(e);
  }

  backward() {
    const roots = this.live((e) => e.node !== null);
    if (!roots.length) return;
    const root = this.pick(roots);
    const targetData = this.values(size(root.shape));
    const target = Tensor.fromArray(this.gpu, targetData, root.shape);
    const loss = l1Loss(root.t, target);
    const n = targetData.length;
    const rootValues = Float64Array.from(root.memory.data);
    // The mirror: nodes reachable from the root, newest first.
    /** @type {Map<NodeMirror, Entry>} */
    const reachable = new Map();
    const stack = [root];
    for (let e = stack.pop(); e; e = stack.pop()) {
      if (!e.node || reachable.has(e.node)) continue;
      reachable.set(e.node, e);
      stack.push(...e.node.inputs);
    }
    const stale = [...reachable.keys()].flatMap((node) => node.saved.filter((s) => s.memory.version !== s.version));
    this.trace.push(
      `gpu.tape.backward(l1Loss(${root.name}, random))${stale.length ? ` (${stale[0].name} was written since)` : ''}`,
    );
    if (stale.length) {
      /** @type {Error | null} */
      let error = null;
      try {
        this.gpu.tape.backward(loss);
      } catch (e) {
        error = /** @type {Error} */ (e);
      }
      if (!error || !/was written after the forward pass/.test(error.message))
        throw new Error(`backward after ${stale[0].name} was written: ${error ? error.message : 'no error'}`);
      [loss, target].forEach((t) => t.dispose());
      return;
    }
    this.gpu.tape.backward(loss);
    const grads = new Map([[root, rootValues.map((v, i) => Math.sign(v - targetData[i]) / n)]]);
    for (const [node, out] of [...reachable].sort(([a], [b]) => b.id - a.id)) {
      const g = /** @type {Float64Array} */ (grads.get(out));
      grads.delete(out);
      const inputGrads = node.backward(g);
      node.inputs.forEach((input, k) => {
        if (!input.requiresGrad) return;
        const gi = inputGrads[k];
        if (input.node) {
          const prev = grads.get(input);
          grads.set(input, prev ? prev.map((v, i) => v + gi[i]) : Float64Array.from(gi));
        } else if (input.t.alive) {
          input.grad = input.grad ? input.grad.map((v, i) => v + gi[i]) : Float64Array.from(gi);
        }
      });
    }
    // backward() clears the tape: every recorded result is a leaf from now on.
    for (const e of this.entries) e.node = null;
    [loss, target].forEach((t) => t.dispose());
  }

  async adam() {
    const sets = this.sets.filter((s) => [...s.entries.values()].some((e) => e.t.alive));
    if (!sets.length) return;
    const set = this.pick(sets);
    const lr = this.pick([0.01, 0.1]);
    const gradClip = this.pick([0, 0, 0.05]);
    set.adam ??= new Adam(set.params, { lr, gradClip });
    set.adam.lr = lr;
    set.adam.gradClip = gradClip;
    // The mirror steps from the gradients the GPU holds (compared with the mirror's at the end): a
    // gradient that is 0 in exact arithmetic and 1e-9 in float32 moves a parameter by lr either way.
    const grads = await Promise.all([...set.entries.values()].map((e) => /** @type {Tensor} */ (e.t.grad).read()));
    this.settle(...set.entries.values());
    set.adam.update();
    const step = set.adam.step;
    [...set.entries.values()].forEach((e, k) => {
      const p = Float32Array.from(e.memory.data);
      const g = gradClip ? grads[k].map((v) => Math.min(Math.max(v, -gradClip), gradClip)) : grads[k];
      const state = set.state.get(e) ?? { m: new Float32Array(p.length), v: new Float32Array(p.length) };
      set.state.set(e, state);
      const { m, v } = state;
      ref.adamStep(p, g, m, v, step, { lr });
      this.written(e, p);
    });
    this.trace.push(`Adam step ${step} of p${this.sets.indexOf(set)} (lr ${lr}, clip ${gradClip})`);
  }

  zeroGrad() {
    if (!this.sets.length) return;
    const set = this.pick(this.sets);
    set.params.zeroGrad();
    for (const e of set.entries.values()) e.grad = new Float64Array(e.t.size);
    this.trace.push(`p${this.sets.indexOf(set)}.zeroGrad()`);
  }

  set() {
    this.write();
  }

  /**
   * The tiny SISN: made (a random state dict loaded, its caches filled by a first check) on first
   * use; then a random state dict loaded again, a training-mode forward (its running statistics
   * updated), or the check that its pure-inference forward (cached packings and folds) equals its
   * uncached forward. The program's last step checks it again.
   */
  async model() {
    if (!this.sisn) {
      this.makeModel();
      return this.checkModel();
    }
    const action = this.pick(['load', 'train', 'check', 'check']);
    if (action === 'load') return this.loadModel();
    if (action === 'check') return this.checkModel();
    const input = Tensor.fromArray(this.gpu, this.values(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    this.settle(...this.live((e) => e.owner === 'model'));
    this.tiny.training = true;
    this.gpu.noGrad(() => this.tiny.forward(input)).dispose();
    this.tiny.training = false;
    input.dispose();
    this.trace.push('SISN training-mode forward (running statistics updated)');
    for (const e of this.live((e) => e.owner === 'model' && !e.t.requiresGrad)) this.written(e, await e.t.read());
  }

  async checkModel() {
    const input = Tensor.fromArray(this.gpu, this.values(3 * 4 * 4), [1, 3, 4, 4]);
    const cached = this.gpu.noGrad(() => this.tiny.forward(input));
    // With gradients on, nothing is folded or packed ahead: the uncached path.
    const uncached = this.tiny.forward(input);
    this.gpu.tape.clear();
    for (const e of this.entries) e.node = null;
    this.trace.push('SISN pure-inference forward == its forward with gradients on (tape cleared)');
    this.compare(await cached.read(), Float64Array.from(await uncached.read()), 'SISN cached vs uncached forward');
    [input, cached, uncached].forEach((t) => t.dispose());
  }

  makeModel() {
    this.sisn = new SISN(this.gpu, TINY_SISN);
    /** @type {SetMirror} */
    const set = { params: this.tiny.params, adam: null, entries: new Map(), state: new Map() };
    this.sets.push(set);
    for (const name of [
      ...MODEL_WEIGHTS,
      ...MODEL_BIASES,
      ...MODEL_BATCHNORMS.flatMap((p) => [`${p}weight`, `${p}bias`]),
    ]) {
      const t = this.tiny.params.get(name);
      const e = this.entry(t, new Float64Array(t.size), { owner: 'model', name });
      e.grad = new Float64Array(t.size);
      set.entries.set(name, e);
    }
    for (const p of MODEL_BATCHNORMS) {
      const [mean, variance] = ['running_mean', 'running_var'].map((s) =>
        this.entry(/** @type {Tensor} */ (this.tiny.buffers.get(`${p}${s}`)), new Float64Array(4), {
          owner: 'model',
          name: `${p}${s}`,
          positive: s === 'running_var',
        }),
      );
      const [gamma, beta] = ['weight', 'bias'].map((s) => /** @type {Entry} */ (set.entries.get(`${p}${s}`)));
      this.batchNorms.push({ gamma, beta, mean, variance });
    }
    this.trace.push(`model = new SISN(${JSON.stringify(TINY_SISN)})`);
    this.loadModel();
  }

  loadModel() {
    /** @type {import('../dist/index.js').StateDict} */
    const dict = new Map();
    /** @type {Map<string, Float32Array>} */
    const values = new Map();
    for (const e of this.tiny.entries) {
      if (e.kind === 'counter') dict.set(e.name, { dtype: 'I64', shape: [], data: [0] });
      else {
        const positive = e.name.endsWith('running_var');
        const data = this.values(size(e.shape), positive).map((v) => (positive ? v : v / 2));
        dict.set(e.name, { dtype: 'F32', shape: [...e.shape], data });
        values.set(e.name, data);
      }
    }
    this.settle(...this.live((e) => e.owner === 'model'));
    loadStateDict(this.tiny, dict);
    for (const e of this.live((e) => e.owner === 'model'))
      this.written(e, /** @type {Float32Array} */ (values.get(e.name)));
    this.trace.push('loadStateDict(model, random values)');
  }

  // ---- the end
  async finish() {
    if (this.sisn) await this.checkModel();
    // Every live tensor and gradient read at once (one wait, not one per tensor).
    for (const e of this.live()) {
      // Values not written since they were read (a view's memory is read once).
      if (e.memory.checked !== e.memory.version) this.expectEntry(e, 'at the end');
      if (!!e.grad !== !!e.t.grad)
        throw new Error(`${e.name}.grad is ${e.t.grad ? 'set' : 'null'}, expected ${e.grad ? 'set' : 'null'}`);
      if (e.grad && e.t.grad) this.expect(e.t.grad, e.grad, `${e.name}.grad at the end`);
    }
    this.settle(...this.live());
    const got = await Promise.all(this.pending.map(([promise]) => promise));
    this.pending.forEach(([, want, what], i) => this.compare(got[i], want, what));
    this.pending = [];
    await this.cleanUp();
    const left = this.gpu.pool.inUseBytes - this.startBytes;
    if (left !== 0) throw new Error(`${left} bytes still in use after everything was disposed`);
  }

  async cleanUp() {
    await Promise.allSettled(this.pending.map(([p]) => p));
    this.gpu.tape.clear();
    for (const e of this.entries) if (e.owner === 'program' && !e.dropped) e.t.dispose();
    for (const set of this.sets) {
      set.adam?.dispose();
      if (set.params !== this.sisn?.params) set.params.dispose();
    }
    this.sisn?.dispose();
    this.sets = [];
    this.sisn = null;
  }
}
