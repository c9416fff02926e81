import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvCell, parseCsv, toCsv } from './csv.js';
import { normalisePattern, patternsFor } from './pattern.js';

describe('suppression patterns', () => {
  it.each([
    ['User@Example.com', 'user@example.com'],
    ['*@example.com', '*@example.com'],
    ['@example.com', '*@example.com'],
    ['example.com', '*@example.com'],
    ['a b@example.com', null],
    ['x@y', null],
    ['"quoted"@example.com', null],
    ['**@example.com', null],
    ['', null],
  ])('normalisePattern(%j) = %j', (input, out) => expect(normalisePattern(input)).toBe(out));

  it('an address is matched by itself and its domain', () => {
    expect(patternsFor('A@B.example')).toEqual(['a@b.example', '*@b.example']);
  });
});

describe('CSV', () => {
  it('round-trips any cells except the formula guard', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.string().filter((s) => !/^[=+\-@\t\r]/.test(s)), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }), (rows) => {
      const nonBlank = rows.filter((r) => !(r.length === 1 && r[0]!.trim() === ''));
      expect(parseCsv(toCsv(nonBlank))).toEqual(nonBlank);
    }));
  });

  it('neutralises formulas', () => {
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+cmd')).toBe("'+cmd");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('plain')).toBe('plain');
  });
});
