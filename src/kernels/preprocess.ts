/** The shader preprocessor: feature blocks and includes. */
import { platform } from '../platform/index.js';

/**
 * Keeps the lines of `// @if FEATURE` / `// @else` / `// @endif` blocks that apply to the device's
 * features, and enables the WGSL extensions the kept code needs. This is how one shader holds a
 * fast path for an optional feature (`subgroups`) and the portable path beside it.
 * `// @include NAME` is replaced by shaders/include/NAME.wgsl (helpers WGSL has no import for).
 */
export function preprocess(file: string, source: string, features: Record<string, boolean>): string {
  const code = source.replace(/^[ \t]*\/\/[ \t]*@include[ \t]+(\w+)[ \t]*$/gm, (_, name: string) => {
    const helper = platform.readInclude(name);
    if (helper === null) throw new Error(`shaders/${file}.wgsl: no shaders/include/${name}.wgsl to include`);
    // Joined into one line so the including file's line numbers stay true.
    return helper
      .split('\n')
      .filter((l) => !/^\s*\/\//.test(l))
      .join(' ');
  });
  const out: string[] = [];
  const stack: { keep: boolean; parentKeep: boolean }[] = [];
  let used = false;
  code.split('\n').forEach((line, n) => {
    const directive = /^\s*\/\/\s*@(if|else|endif)\b\s*(\w*)/.exec(line);
    const keep = stack.length ? stack[stack.length - 1].keep : true;
    if (!directive) {
      out.push(keep ? line : '');
      return;
    }
    out.push('');
    const [, word, name] = directive;
    if (word === 'if') {
      if (!(name in features)) throw new Error(`shaders/${file}.wgsl:${n + 1}: unknown feature '${name}' in @if`);
      if (name === 'subgroups' && features[name]) used = true;
      stack.push({ keep: keep && features[name], parentKeep: keep });
    } else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`shaders/${file}.wgsl:${n + 1}: @else without @if`);
      top.keep = top.parentKeep && !top.keep;
    } else if (!stack.pop()) throw new Error(`shaders/${file}.wgsl:${n + 1}: @endif without @if`);
  });
  if (stack.length) throw new Error(`shaders/${file}.wgsl: @if without @endif`);
  // Line numbers stay those of the file: the directive lines become blank, `enable` joins line 1.
  if (used) out[0] = `enable subgroups; ${out[0]}`;
  return out.join('\n');
}
