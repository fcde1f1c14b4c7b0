// The source tree's shape: no import cycles in src/ (type-only imports count), and no file past
// its size limit (.ts 400 lines, .wgsl 400), no line over 120 characters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

function filesUnder(dir, ext) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), ext) : e.name.endsWith(ext) ? [join(dir, e.name)] : [],
  );
}

/** The src/ modules a file imports or re-exports from, type-only imports included (they tie the layers too). */
function imports(file) {
  const code = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(/^\s*(?:import|export)\b[^'";]*?['"](\.[^'"]+)['"]/gm)].map((m) =>
    resolve(dirname(file), m[1].replace(/\.js$/, '.ts')),
  );
}

/** Every cycle's path, found by depth-first search from each module. */
function cycles(files) {
  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, imports(f).filter((g) => known.has(g))]));
  const found = [];
  const state = new Map();
  const stack = [];
  const visit = (f) => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f)) {
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
  const long = [
    ...filesUnder(SRC, '.ts').map((f) => [f, 400]),
    ...filesUnder(join(ROOT, 'shaders'), '.wgsl').map((f) => [f, 400]),
  ]
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

test.run();
