/**
 * What a WGSL source says about its compute entry points, read with wgsl_reflect: each entry's
 * bindings (only those it uses), the byte layout of its uniform struct, its workgroup size, override
 * constants and module-scope integer constants (what TypeScript reads instead of restating them);
 * and the packing of uniform values at the reflected offsets, so no byte
 * offset is ever written by hand.
 */
import {
  WgslReflect,
  ResourceType,
  type FunctionInfo,
  type VariableInfo,
  type MemberInfo,
} from 'wgsl_reflect/wgsl_reflect.module.js';

export type UniformValues = Record<string, number | readonly number[]>;
export type Constants = Record<string, number>;

export interface UniformField {
  name: string;
  offset: number;
  /** Scalar kind of each component. */
  kind: 'u32' | 'i32' | 'f32';
  components: number;
  /** Read by the entry point (or a function it calls): a dispatch must give it. */
  used: boolean;
}

export interface UniformLayout {
  binding: number;
  size: number;
  fields: UniformField[];
}

export interface StorageSlot {
  name: string;
  binding: number;
  readOnly: boolean;
}

/** What reflection tells about one entry point. */
export interface KernelInfo {
  name: string;
  file: string;
  entry: string;
  code: string;
  uniform: UniformLayout | null;
  storage: StorageSlot[];
  workgroupSize: [number, number, number];
  overrides: string[];
  /** The file's module-scope `const NAME: u32 = <integer>u;` values (i32 too; bool as 0 or 1), by name. */
  constants: Readonly<Record<string, number>>;
}

/**
 * A shader's module-scope constants written as literals (`const RUN: u32 = 8u;`, booleans as 0 and
 * 1): the
 * tiling and limits the TypeScript side must launch by. Derived constants (`TO / 4u`) are the
 * shader's own business and not read.
 */
export function moduleConstants(code: string): Record<string, number> {
  const found: Record<string, number> = {};
  // At a line's start, or after a `;` (an included helper is joined into one line).
  for (const m of code.matchAll(/(?<=^|;[ \t]*)const (\w+): (?:[ui]32 = (-?\d+)[ui]?|bool = (true|false));/gm))
    found[m[1]] = m[2] !== undefined ? Number(m[2]) : Number(m[3] === 'true');
  return found;
}

function componentInfo(
  typeName: string,
  formatName: string | undefined,
): { kind: UniformField['kind']; components: number } {
  const vec = /^vec([234])(?:([fiu])|<(\w+)>)?$/.exec(typeName);
  if (vec) {
    const suffix = vec[2] ?? '';
    const scalar = vec[3] ?? formatName ?? { f: 'f32', i: 'i32', u: 'u32' }[suffix];
    if (scalar !== 'f32' && scalar !== 'i32' && scalar !== 'u32')
      throw new Error(`unsupported uniform vector type ${typeName}`);
    return { kind: scalar, components: Number(vec[1]) };
  }
  if (typeName === 'f32' || typeName === 'i32' || typeName === 'u32') return { kind: typeName, components: 1 };
  throw new Error(`unsupported uniform member type ${typeName}`);
}

function uniformLayout(v: VariableInfo, used: (member: string) => boolean): UniformLayout {
  const members: MemberInfo[] = v.members ?? [];
  if (!v.isStruct) throw new Error(`uniform ${v.name} must be a struct`);
  return {
    binding: v.binding,
    size: v.size,
    fields: members.map((m) => ({
      name: m.name,
      offset: m.offset,
      ...componentInfo(m.type.name, m.type.isTemplate ? m.format?.name : undefined),
      used: used(m.name),
    })),
  };
}

/**
 * Which members of the uniform struct `variable` an entry point reads: the `variable.member`
 * references in its source and that of the functions it calls (comments left out). A struct is
 * often shared by a file's entries, each reading a few members; where the variable is used other
 * than through a member (copied whole), every member counts as read.
 */
function membersRead(code: string, entry: FunctionInfo, variable: string): (member: string) => boolean {
  const lines = code.split('\n');
  const seen = new Set<FunctionInfo>();
  const visit = (fn: FunctionInfo): void => {
    if (seen.has(fn)) return;
    seen.add(fn);
    fn.calls.forEach(visit);
  };
  visit(entry);
  const body = [...seen]
    .map((fn) => lines.slice(fn.startLine - 1, fn.endLine).join('\n'))
    .join('\n')
    .replace(/\/\/.*$/gm, '');
  const uses = [...body.matchAll(new RegExp(`\\b${variable}\\b(\\s*\\.\\s*(\\w+))?`, 'g'))];
  if (uses.some((u) => u[2] === undefined)) return () => true;
  const read = new Set(uses.map((u) => u[2]));
  return (member) => read.has(member);
}

/** Reflects every compute entry point of one WGSL source. */
export function reflectShader(file: string, code: string): KernelInfo[] {
  let reflect: WgslReflect;
  try {
    reflect = new WgslReflect(code);
  } catch (e) {
    throw new Error(`shader ${file}: WGSL parse error: ${(e as Error).message}`, { cause: e });
  }
  const constants = moduleConstants(code);
  return reflect.entry.compute.map((fn) => {
    const uniforms = fn.resources.filter((r) => r.resourceType === ResourceType.Uniform);
    const storage = fn.resources.filter((r) => r.resourceType === ResourceType.Storage);
    const others = fn.resources.filter(
      (r) => r.resourceType !== ResourceType.Uniform && r.resourceType !== ResourceType.Storage,
    );
    if (uniforms.length > 1 || others.length)
      throw new Error(`kernel ${file}.${fn.name}: use at most one uniform struct and storage buffers only`);
    for (const r of fn.resources)
      if (r.group !== 0) throw new Error(`kernel ${file}.${fn.name}: binding ${r.name} must be in group 0`);
    return {
      name: `${file}.${fn.name}`,
      file,
      entry: fn.name,
      code,
      uniform: uniforms.length ? uniformLayout(uniforms[0], membersRead(code, fn, uniforms[0].name)) : null,
      storage: storage.map((s) => ({ name: s.name, binding: s.binding, readOnly: s.access === 'read' })),
      workgroupSize: fn.workgroupSize ?? [1, 1, 1],
      // Module-wide: reflection misses overrides used only inside some statements (e.g. `switch`).
      overrides: reflect.overrides.map((o) => o.name),
      constants,
    };
  });
}

/**
 * Packs uniform values at their reflected offsets. Unknown names are errors; so are missing ones
 * that the entry point reads, unless `partial` (members left out are 0).
 */
export function packUniforms(
  kernel: string,
  layout: UniformLayout,
  values: UniformValues,
  partial = false,
): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(layout.size / 16) * 16);
  const view = new DataView(bytes.buffer);
  const known = new Set(layout.fields.map((f) => f.name));
  for (const key of Object.keys(values))
    if (!known.has(key)) throw new Error(`kernel ${kernel}: no uniform member named '${key}'`);
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (partial || !f.used) continue;
      throw new Error(`kernel ${kernel}: uniform member '${f.name}' not given`);
    }
    const list = typeof v === 'number' ? [v] : v;
    if (list.length !== f.components)
      throw new Error(`kernel ${kernel}: uniform '${f.name}' takes ${f.components} values, got ${list.length}`);
    list.forEach((x, i) => {
      const at = f.offset + 4 * i;
      if (f.kind === 'f32') view.setFloat32(at, x, true);
      else if (f.kind === 'i32') view.setInt32(at, x, true);
      else {
        if (!(Number.isInteger(x) && x >= 0 && x <= 0xffffffff))
          throw new Error(`kernel ${kernel}: uniform '${f.name}' must be a u32, got ${x}`);
        view.setUint32(at, x, true);
      }
    });
  }
  return bytes;
}
