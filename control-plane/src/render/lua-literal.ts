/**
 * A deterministic emitter of Lua *data*: the only way the control plane writes Lua that carries values
 * from tenants or operators. It emits literals and nothing else, so no input can become code:
 *   - strings are single-quoted with every byte that could end or bend the literal escaped
 *     (backslash, quote, control bytes as \ddd); long brackets are never used, so `]]` is inert;
 *   - keys that came from data are always bracketed (`['acme.example'] = ...`); only keys of a fixed
 *     schema (wrapped with `record`) may be bare identifiers, and never Lua keywords;
 *   - integers stay integers and floats get a decimal point (Lua 5.4 tells them apart);
 *   - table entries are sorted and one per line with trailing commas, so a policy change is a small,
 *     reviewable diff. Pure; the same value always gives the same bytes.
 * The output is in the Lua 5.3 subset that luaparse understands and Lua 5.4 runs.
 */

export type LuaValue = string | number | boolean | null | undefined | LuaFloat | LuaValue[] | LuaRecord | LuaMap;

const RECORD = Symbol('lua-record');
const MAP = Symbol('lua-map');

/** A table of fixed-schema keys (written bare when they are identifiers). */
export interface LuaRecord {
  readonly [RECORD]: true;
  readonly entries: Readonly<Record<string, LuaValue>>;
}

/** A table keyed by data (always bracketed, sorted). */
export interface LuaMap {
  readonly [MAP]: true;
  readonly entries: Readonly<Record<string, LuaValue>>;
}

export const record = (entries: Record<string, LuaValue>): LuaRecord => ({ [RECORD]: true, entries });
export const map = (entries: Record<string, LuaValue>): LuaMap => ({ [MAP]: true, entries });

const KEYWORDS = new Set([
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'goto', 'if', 'in', 'local',
  'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while',
]);

export function isBareIdentifier(key: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !KEYWORDS.has(key);
}

/** A single-quoted Lua string literal for any JS string (encoded as UTF-8 bytes). */
const PLAIN = /^[\x20-\x26\x28-\x5b\x5d-\x7e]*$/;

export function luaString(s: string): string {
  // printable ASCII without quote or backslash needs no escaping: the common case, made cheap
  if (PLAIN.test(s)) return `'${s}'`;
  let out = "'";
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte === 0x5c) out += '\\\\';
    else if (byte === 0x27) out += "\\'";
    else if (byte === 0x0a) out += '\\n';
    else if (byte === 0x0d) out += '\\r';
    else if (byte === 0x09) out += '\\t';
    // three digits always, so a following digit cannot extend the escape
    else if (byte < 0x20 || byte === 0x7f) out += `\\${String(byte).padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  // the bytes >= 0x80 were appended as Latin-1 code points; turn them back into the original bytes
  return Buffer.from(`${out}'`, 'latin1').toString('utf8');
}

export function luaNumber(n: number, integer: boolean): string {
  if (!Number.isFinite(n)) throw new RangeError(`cannot write ${n} as Lua data`);
  if (integer) {
    if (!Number.isSafeInteger(n)) throw new RangeError(`${n} is not a safe integer`);
    return Object.is(n, -0) ? '0' : String(n);
  }
  const text = String(n);
  if (/e/i.test(text)) return text.includes('.') ? text : text.replace(/e/i, '.0e');
  return text.includes('.') ? text : `${text}.0`;
}

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function writeKey(key: string, bare: boolean): string {
  return bare && isBareIdentifier(key) ? key : `[${luaString(key)}]`;
}

/**
 * Write a value. Numbers are integers when they are whole, floats otherwise; wrap a whole number in
 * `float()` to force a float.
 */
export function luaLiteral(value: LuaValue, indent = ''): string {
  if (value instanceof LuaFloat) return luaNumber(value.value, false);
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return luaNumber(value, Number.isInteger(value));
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.some((v) => v === null || v === undefined)) throw new TypeError('a Lua sequence cannot hold nil');
    if (value.length === 0) return '{}';
    return `{\n${value.map((v) => `${inner}${luaLiteral(v, inner)},\n`).join('')}${indent}}`;
  }
  const bare = RECORD in value;
  const entries = Object.entries(value.entries).filter(([, v]) => v !== null && v !== undefined);
  if (entries.length === 0) return '{}';
  entries.sort(([a], [b]) => compareKeys(a, b));
  return `{\n${entries.map(([k, v]) => `${inner}${writeKey(k, bare)} = ${luaLiteral(v as LuaValue, inner)},\n`).join('')}${indent}}`;
}

/** Forces a float where the value happens to be whole (`1.0`, not `1`). */
export class LuaFloat {
  constructor(readonly value: number) {}
}
export const float = (n: number): LuaFloat => new LuaFloat(n);
