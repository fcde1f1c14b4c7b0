// The package's surface (package.json `exports`): the root, and `sisn-webgpu/internals`, no name
// in both. Every type that a function, class or type the root exports takes, returns or holds (declared in src/)
// is exported too, from the root or from the internals, so a user can name it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { readJson } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const pkg = /** @type {{ exports: Record<string, unknown> }} */ (readJson(join(ROOT, 'package.json')));

test('package.json exports the root and the internals, built by tsc', () => {
  assert.equal(Object.keys(pkg.exports), ['.', './internals', './package.json']);
  assert.equal(pkg.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
  assert.equal(pkg.exports['./internals'], { types: './dist/internals.d.ts', default: './dist/internals.js' });
});

test('every type in the signatures of what the root exports is exported', () => {
  const files = ['index.ts', 'internals.ts'].map((f) => join(SRC, f));
  /** @type {unknown} */
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path)).config;
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
  const program = ts.createProgram(files, { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  /** @param {ts.Symbol} s */
  const resolve = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  /** @param {string} file */
  const exportsOf = (file) => {
    const source = program.getSourceFile(file);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`${file} is not a module of the program`);
    return checker.getExportsOfModule(module).map(resolve);
  };
  const [root, internals] = files.map(exportsOf);
  const exported = new Set([...root, ...internals]);
  const both = root.filter((s) => internals.includes(s)).map((s) => s.name);
  assert.equal(both, [], `exported from the root and from the internals: ${both.join(', ')}`);
  /** @param {ts.Symbol} s */
  const inSrc = (s) => s.declarations?.some((d) => d.getSourceFile().fileName.startsWith(SRC)) ?? false;
  const named = ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.Enum | ts.SymbolFlags.TypeAlias;
  /** @type {Map<string, string>} */
  const missing = new Map();
  /** @type {Set<ts.Type>} */
  const seen = new Set();

  /** @type {(sig: ts.Signature, where: string) => void} */
  const visitSignature = (sig, where) => {
    for (const p of sig.getParameters()) visitType(checker.getTypeOfSymbol(p), `${where}(${p.name})`);
    visitType(sig.getReturnType(), `${where}()`);
  };
  /** @type {(type: ts.Type, where: string) => void} */
  const visitMembers = (type, where) => {
    for (const p of checker.getPropertiesOfType(type)) {
      if (
        p.name.startsWith('_') ||
        (p.valueDeclaration && ts.canHaveModifiers(p.valueDeclaration)
          ? ts.getModifiers(p.valueDeclaration)
          : []
        )?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)
      )
        continue;
      visitType(checker.getTypeOfSymbol(p), `${where}.${p.name}`);
    }
    for (const sig of type.getCallSignatures()) visitSignature(sig, where);
    for (const sig of type.getConstructSignatures()) visitSignature(sig, `new ${where}`);
  };
  /** @type {(type: ts.Type, where: string) => void} */
  const visitType = (type, where) => {
    if (seen.has(type)) return;
    seen.add(type);
    for (const t of type.aliasTypeArguments ?? []) visitType(t, where);
    if (type.isUnionOrIntersection()) return type.types.forEach((t) => visitType(t, where));
    if (type.flags & ts.TypeFlags.Object && /** @type {ts.ObjectType} */ (type).objectFlags & ts.ObjectFlags.Reference)
      checker.getTypeArguments(/** @type {ts.TypeReference} */ (type)).forEach((t) => visitType(t, where));
    const symbol = type.aliasSymbol ?? type.getSymbol();
    if (!symbol || !inSrc(symbol)) return;
    if (symbol.flags & named) {
      // A named type: the user must be able to import it; the root's own ones are walked too.
      if (!exported.has(symbol)) missing.set(symbol.name, where);
      if (!root.includes(symbol)) return;
    }
    visitMembers(type, where);
  };

  for (const s of root) {
    if (s.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Class | ts.SymbolFlags.Variable))
      visitMembers(checker.getTypeOfSymbol(s), s.name);
    if (s.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))
      visitMembers(checker.getDeclaredTypeOfSymbol(s), s.name);
  }
  const found = [...missing].map(([name, where]) => `${name} (in ${where})`);
  assert.equal(found, [], `types the root's API uses but nothing exports:\n  ${found.join('\n  ')}`);
});

test.run();
