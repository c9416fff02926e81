import fc from 'fast-check';
import luaparse from 'luaparse';
import { describe, expect, it } from 'vitest';
import { evalLuaData } from '../../test/support/lua.js';
import { float, LuaFloat, luaLiteral, luaString, map, record, type LuaValue } from './lua-literal.js';

const HOSTILE = [
  "'", '"', '\\', "\\'", ']]', ']=]', '[[', '[==[', '\n', '\r\n', '\u0000', '\u0000123', '\u001b[31m', '\u007f',
  "'); os.execute('rm -rf /') --", "']] .. os.exit() .. [['", '--[[', '\\z', '\\ddd', 'é', '日本語', '🙂', 'x'.repeat(70000),
];

/** What a rendered value should read as back in Lua, in the JSON the harness returns. */
function expected(v: LuaValue): unknown {
  if (v instanceof LuaFloat) return { float: v.value };
  if (typeof v === 'number') return Number.isInteger(v) ? v : { float: v };
  // an empty table is an empty table in Lua, whether it was a list or a map
  if (Array.isArray(v)) return v.length === 0 ? {} : v.map(expected);
  if (v && typeof v === 'object') {
    const entries = Object.entries((v as { entries: Record<string, LuaValue> }).entries).filter(([, x]) => x !== null && x !== undefined);
    if (entries.length === 0) return {};
    return Object.fromEntries(entries.map(([k, x]) => [k, expected(x)]));
  }
  return v;
}

describe('luaString', () => {
  it.each([
    ['plain', "'plain'"],
    ["it's", "'it\\'s'"],
    ['a\\b', "'a\\\\b'"],
    ['line\nbreak', "'line\\nbreak'"],
    ['nul\u00001', "'nul\\0001'"],
    [']]', "']]'"],
    ['café', "'café'"],
  ])('%j -> %s', (input, out) => expect(luaString(input)).toBe(out));
});

describe('luaLiteral', () => {
  it('writes sorted, one-per-line tables with trailing commas; data keys bracketed, schema keys bare', () => {
    const text = luaLiteral(record({ zeta: 1, alpha: map({ 'b.example': true, 'a.example': 'x', end: 2 }), list: ['q', 2.5, float(3)], gone: null }));
    expect(text).toBe(
      [
        '{',
        '  alpha = {',
        "    ['a.example'] = 'x',",
        "    ['b.example'] = true,",
        "    ['end'] = 2,",
        '  },',
        '  list = {',
        "    'q',",
        '    2.5,',
        '    3.0,',
        '  },',
        '  zeta = 1,',
        '}',
      ].join('\n'),
    );
  });

  it('brackets keywords and non-identifiers even in records', () => {
    expect(luaLiteral(record({ end: 1, 'with space': 2, ok_1: 3 }))).toBe("{\n  ['end'] = 1,\n  ok_1 = 3,\n  ['with space'] = 2,\n}");
  });

  it('refuses what Lua data cannot hold', () => {
    expect(() => luaLiteral(Number.NaN)).toThrow();
    expect(() => luaLiteral(Number.POSITIVE_INFINITY)).toThrow();
    expect(() => luaLiteral([1, null])).toThrow();
  });

  it('is deterministic: key order in the input does not matter', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.integer()), (d) => {
      const reversed = Object.fromEntries(Object.entries(d).reverse());
      expect(luaLiteral(map(reversed))).toBe(luaLiteral(map(d)));
    }));
  });

  it('hostile strings parse with luaparse and read back unchanged in Lua 5.4, as values and as keys', () => {
    const value = record({ values: HOSTILE, keys: map(Object.fromEntries(HOSTILE.map((h, i) => [h, i]))) });
    const text = `return ${luaLiteral(value)}`;
    expect(() => luaparse.parse(text, { luaVersion: '5.3' })).not.toThrow();
    expect(evalLuaData(text)).toEqual(expected(value));
  });

  it('property: any value tree round-trips through Lua 5.4 exactly (integers stay integers, floats floats)', () => {
    const leaf = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.constantFrom(...HOSTILE.slice(0, -1)),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
      fc.boolean(),
    );
    const tree = fc.letrec<{ node: LuaValue }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), tie('node'), { maxKeys: 4 }).map((d) => map(d)),
      ),
    })).node;
    const samples = fc.sample(tree, { numRuns: 300, seed: 42 });
    const text = `return ${luaLiteral(samples)}`;
    expect(() => luaparse.parse(text, { luaVersion: '5.3' })).not.toThrow();
    const back = evalLuaData(text) as unknown[];
    expect(back).toHaveLength(samples.length);
    samples.forEach((s, i) => expect(back[i]).toEqual(expected(s)));
  });
});
