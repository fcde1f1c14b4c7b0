// The source tree's shape: no import cycles in src/ (type-only imports count), no file past its size
// limit (.ts 400 lines, .wgsl 400), no line over 120 characters, kernels launched and gradient rules
// recorded only by ops (src/nn/ holds parameters and calls ops), and no TypeScript constant
// restating a WGSL one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { moduleConstants } from '../dist/internals.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/**
 * Every file under `dir` whose name ends with `ext`, at any depth.
 * @param {string} dir
 * @param {string} ext
 * @returns {string[]}
 */
function filesUnder(dir, ext) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), ext) : e.name.endsWith(ext) ? [join(dir, e.name)] : [],
  );
}

/**
 * The src/ modules a file imports or re-exports from, type-only imports included (they tie the layers too).
 * @param {string} file
 */
function imports(file) {
  const code = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(/^\s*(?:import|export)\b[^'";]*?['"](\.[^'"]+)['"]/gm)].map((m) =>
    resolve(dirname(file), m[1].replace(/\.js$/, '.ts')),
  );
}

/**
 * Every cycle's path, found by depth-first search from each module.
 * @param {string[]} files
 */
function cycles(files) {
  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, imports(f).filter((g) => known.has(g))]));
  /** @type {string[]} */
  const found = [];
  const state = new Map();
  /** @type {string[]} */
  const stack = [];
  /** @param {string} f */
  const visit = (f) => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open')
        found.push([...stack.slice(stack.indexOf(g)), g].map((p) => relative(SRC, p)).join(' -> '));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

test('src/ has no import cycles', () => {
  const found = cycles(filesUnder(SRC, '.ts'));
  assert.equal(found, [], `import cycles:\n  ${found.join('\n  ')}`);
});

test('the device layer (src/gpu/) knows nothing of tensors, kernels, autograd or the engine', () => {
  const above = ['tensor.ts', 'engine.ts', 'kernels/', 'autograd/', 'ops/', 'nn/'];
  const found = filesUnder(join(SRC, 'gpu'), '.ts').flatMap((f) =>
    imports(f)
      .map((g) => relative(SRC, g))
      .filter((g) => above.some((a) => g === a || g.startsWith(a)))
      .map((g) => `${relative(SRC, f)} imports ${g}`),
  );
  assert.equal(found, [], found.join('\n'));
});

test('no .ts file in src/ is over 400 lines and no shader over 400', () => {
  /** @type {[string, number][]} */
  const limits = [
    ...filesUnder(SRC, '.ts').map((f) => /** @type {[string, number]} */ ([f, 400])),
    ...filesUnder(join(ROOT, 'shaders'), '.wgsl').map((f) => /** @type {[string, number]} */ ([f, 400])),
  ];
  const long = limits
    .map(([f, max]) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length, max])
    .filter(([, lines, max]) => lines > max);
  assert.equal(long, [], long.map(([f, n, max]) => `${f}: ${n} lines (limit ${max})`).join('\n'));
});

const WIDTH = 120;
const WIDTH_CHECKED = ['src', 'test', 'scripts', 'bench', 'web'];

test(`no line in ${WIDTH_CHECKED.join('/, ')}/ is over ${WIDTH} characters`, () => {
  const code = /\.(ts|js|mjs|wgsl|html|css|py)$/;
  const wide = WIDTH_CHECKED.flatMap((dir) =>
    filesUnder(join(ROOT, dir), '')
      .filter((f) => code.test(f) && !relative(ROOT, f).startsWith(join('test', 'fixtures')))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .flatMap((line, i) => (line.length > WIDTH ? [`${relative(ROOT, f)}:${i + 1}: ${line.length}`] : [])),
      ),
  );
  assert.equal(wide, [], wide.join('\n'));
});

/**
 * A file's code without its comments.
 * @param {string} file
 */
function withoutComments(file) {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
}

test('kernels are launched only by ops (and the optimiser), gradient rules recorded only by ops', () => {
  const found = [];
  for (const f of filesUnder(SRC, '.ts')) {
    const where = relative(SRC, f);
    const text = withoutComments(f);
    const launches = /\bkernels\s*\.\s*dispatch\b/.test(text);
    if (launches && !/^(ops|optim|kernels)\//.test(where)) found.push(`${where} launches a kernel`);
    if (/\btape\s*\.\s*(record|keepFor)\b/.test(text) && !where.startsWith('ops/'))
      found.push(`${where} records a gradient rule`);
  }
  assert.equal(found, [], found.join('\n'));
});

test('src/nn/ holds parameters and calls ops: no kernel, tape or device use, no import below ops', () => {
  const below = ['kernels/', 'autograd/', 'gpu/'];
  const found = filesUnder(join(SRC, 'nn'), '.ts').flatMap((f) => {
    const where = relative(SRC, f);
    const text = withoutComments(f);
    const uses = [/\bkernels\s*\./, /\.dispatch\s*\(/, /\.record\s*\(/, /\bkeepFor\b/]
      .filter((re) => re.test(text))
      .map((re) => `${where} uses ${re.source}`);
    const imported = imports(f)
      .map((g) => relative(SRC, g))
      .filter((g) => below.some((b) => g.startsWith(b)))
      .map((g) => `${where} imports ${g}`);
    return [...uses, ...imported];
  });
  assert.equal(found, [], found.join('\n'));
});

/**
 * Numeric constants the host owns (no shader has them), in the files that launch kernels: any other
 * belongs in the WGSL, read with gpu.kernels.constant.
 */
/** @type {Record<string, string[]>} */
const HOST_CONSTANTS = {
  'ops/batchnorm.ts': ['DEFAULT_EPS'], // PyTorch's BatchNorm2d default
  'ops/reduce.ts': ['SERIAL_SUM_MAX'], // where the host picks channel_sum_serial
  // rounds that pick, and re-time, a tuning trial's fastest; the margin it must win by
  'kernels/tuner.ts': ['SELECT_ROUNDS', 'CONFIRM_ROUNDS', 'CONFIRM_MARGIN'],
  'ops/pool.ts': ['MAX_PLANE'], // the cells an argmax stored as f32 indexes exactly
};

test('no TypeScript constant restates a WGSL one', () => {
  /** @type {Map<string, { value: number, file: string }[]>} */
  const wgsl = new Map();
  for (const f of [...filesUnder(join(ROOT, 'shaders'), '.wgsl')])
    for (const [name, value] of Object.entries(moduleConstants(readFileSync(f, 'utf8'))))
      wgsl.set(name, [...(wgsl.get(name) ?? []), { value, file: relative(ROOT, f) }]);
  const names = [...wgsl.keys()];
  const found = [];
  for (const f of filesUnder(SRC, '.ts')) {
    const where = relative(SRC, f);
    const text = readFileSync(f, 'utf8');
    const launching = /^(ops|kernels)\//.test(where);
    for (const m of text.matchAll(
      /((?:\/\*\*(?:[^*]|\*(?!\/))*\*\/\s*|\/\/[^\n]*\n\s*)*)const ([A-Z][A-Z0-9_]*) = (-?[\d.]+(?:e-?\d+)?)\b/g,
    )) {
      const [, doc, name, literal] = m;
      const value = Number(literal);
      const tokens = name.split('_');
      // Named as a shader's constant (or with it as a part: ATTEND_QUADS, RUN_VEC4S) and equal to it.
      const sameName = names.filter(
        (n) =>
          (wgsl.get(n) ?? []).some((c) => c.value === value) &&
          tokens.some((_, i) => tokens.slice(i, i + n.split('_').length).join('_') === n),
      );
      // Its comment points at a shader constant ("its TI1", "RUN in the kernel").
      const mentioned = names.filter((n) => new RegExp(`\\b${n}\\b`).test(doc));
      const unlisted = launching && !(HOST_CONSTANTS[where] ?? []).includes(name);
      const why = [
        ...sameName.map((n) => `names ${n} (${(wgsl.get(n) ?? []).map((c) => c.file).join(', ')})`),
        ...mentioned.filter((n) => !sameName.includes(n)).map((n) => `its comment names ${n}`),
        ...(unlisted ? ['is not a host constant (HOST_CONSTANTS)'] : []),
      ];
      if (why.length) found.push(`${where}: ${name} = ${literal} ${why.join('; ')}: read it with gpu.kernels.constant`);
    }
    // Codes a kernel switches on are the shader's constants, named (ReduceMode, ReluMask, the binary ops).
    if (launching)
      for (const m of text.matchAll(/\benum\s+(\w+)\s*\{([^}]*)\}/g))
        if (/=\s*-?\d/.test(m[2])) found.push(`${where}: enum ${m[1]} has numeric codes: name the shader's constants`);
  }
  assert.equal(found, [], found.join('\n'));
});

test.run();
