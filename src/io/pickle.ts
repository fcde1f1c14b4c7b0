/**
 * A restricted pickle interpreter: the opcodes `torch.save` emits for a state_dict (protocols 2-4),
 * nothing executed. Globals become `PickleGlobal` names; REDUCE and BINPERSID are handed to the
 * caller, which decides what they may build. Every read is bounds-checked and every opcode consumes
 * at least one byte, so any input ends, in time and memory linear in its length.
 */
export interface PickleGlobal {
  global: string;
}

export interface PickleHooks {
  /** Builds `fn(*args)` for the globals the caller allows; throws for the rest. */
  reduce(fn: PickleGlobal, args: unknown[]): unknown;
  /** Resolves a persistent id (a storage reference in PyTorch checkpoints). */
  persistentLoad(pid: unknown): unknown;
}

const MARK = Symbol('mark');

/** A short, safe rendering of an unpickled value for error messages (values may be huge or cyclic). */
export function describe(value: unknown, depth = 2): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (value === null || typeof value !== 'object') return String(value);
  if ('global' in value) return describe((value as PickleGlobal).global);
  if (!Array.isArray(value)) return value instanceof Map ? 'a dict' : 'an object';
  if (depth === 0) return '[...]';
  const items = value.slice(0, 6).map((v) => describe(v, depth - 1));
  return `[${items.join(', ')}${value.length > 6 ? ', ...' : ''}]`;
}

export function unpickle(data: Uint8Array, source: string, hooks: PickleHooks): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let opAt = 0;
  const fail = (what: string): never => {
    throw new Error(`${source}: malformed pickle: ${what} (opcode 0x${data[opAt].toString(16)} at byte ${opAt})`);
  };
  const take = (n: number): number => {
    if (pos + n > data.byteLength) fail(`${n} bytes of operand run past the end of the ${data.byteLength}-byte pickle`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => data[take(1)];
  const u32 = () => view.getUint32(take(4), true);
  const str = (n: number) => text.decode(data.subarray(take(n), pos));
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('a text operand has no terminating newline');
    return str(end - pos + 1).slice(0, -1);
  };
  const pop = (): unknown => {
    if (!stack.length || stack[stack.length - 1] === MARK) fail('the stack is empty');
    return stack.pop();
  };
  const top = (): unknown => {
    if (!stack.length || stack[stack.length - 1] === MARK) fail('the stack is empty');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no mark');
    return stack.splice(i).slice(1);
  };
  const get = (key: number) => {
    if (!memo.has(key)) fail(`memo ${key} was never stored`);
    return memo.get(key);
  };
  const setItems = (items: unknown[]) => {
    const target = top();
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2) fail('SETITEMS with a key but no value');
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const append = (items: unknown[]) => {
    const target = top();
    if (!Array.isArray(target)) fail('APPEND(S) on something that is not a list');
    for (const item of items) (target as unknown[]).push(item);
  };
  const global = (mod: unknown, name: unknown): PickleGlobal => {
    if (typeof mod !== 'string' || typeof name !== 'string') fail('a global name that is not a string');
    return { global: `${String(mod)}.${String(name)}` };
  };
  const long = (n: number): number => {
    if (n > 8) fail(`a ${n}-byte integer`);
    const at = take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]);
    if (n && data[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return Number(v);
  };
  for (;;) {
    if (pos >= data.byteLength) fail('no STOP before the end');
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80:
        take(1);
        break; // PROTO
      case 0x95:
        take(8);
        break; // FRAME
      case 0x2e: {
        const result = pop();
        return result;
      } // STOP
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x63: {
        const mod = line();
        stack.push(global(mod, line()));
        break;
      } // GLOBAL
      case 0x93: {
        const name = pop();
        stack.push(global(pop(), name));
        break;
      } // STACK_GLOBAL
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
        stack.push(get(u8()));
        break; // BINGET
      case 0x6a:
        stack.push(get(u32()));
        break; // LONG_BINGET
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      } // TUPLE3
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(view.getUint16(take(2), true));
        break; // BININT2
      case 0x4a:
        stack.push(view.getInt32(take(4), true));
        break; // BININT
      case 0x8a:
        stack.push(long(u8()));
        break; // LONG1
      case 0x47:
        stack.push(view.getFloat64(take(8), false));
        break; // BINFLOAT
      case 0x58:
        stack.push(str(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(str(u8()));
        break; // SHORT_BINUNICODE
      case 0x55:
        stack.push(str(u8()));
        break; // SHORT_BINSTRING
      case 0x54:
        stack.push(str(u32()));
        break; // BINSTRING
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x51:
        stack.push(hooks.persistentLoad(pop()));
        break; // BINPERSID
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
        if (!(fn && typeof fn === 'object' && 'global' in fn)) fail('REDUCE of something that is not a global');
        stack.push(hooks.reduce(fn as PickleGlobal, args as unknown[]));
        break;
      }
      case 0x62:
        pop();
        top();
        break; // BUILD: the state of an OrderedDict (e.g. _metadata) is not needed
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems([k, v]);
        break;
      } // SETITEM
      case 0x75:
        setItems(popMark());
        break; // SETITEMS
      case 0x61:
        append([pop()]);
        break; // APPEND
      case 0x65:
        append(popMark());
        break; // APPENDS
      default:
        fail('unsupported opcode');
    }
  }
}
