import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derivePseudonym } from './pseudonym.js';

const key = Buffer.from('k'.repeat(32));

describe('derivePseudonym', () => {
  it('is stable, well-formed, and depends on the key', () => {
    fc.assert(
      fc.property(fc.uuid(), (id) => {
        const p = derivePseudonym(key, id);
        expect(p).toMatch(/^Sender_\d{6}$/);
        expect(derivePseudonym(key, id)).toBe(p);
      }),
    );
    const id = '6f1c2d4e-0000-4000-8000-000000000001';
    expect(derivePseudonym(Buffer.from('x'.repeat(32)), id)).not.toBe(derivePseudonym(key, id));
  });

  it('moves to another name on a later attempt', () => {
    const id = '6f1c2d4e-0000-4000-8000-000000000002';
    const names = new Set([0, 1, 2, 3].map((a) => derivePseudonym(key, id, a)));
    expect(names.size).toBe(4);
  });

  it('does not leak the id: sequential ids give unrelated names', () => {
    const names = Array.from({ length: 2000 }, (_, i) => derivePseudonym(key, `tenant-${i}`));
    expect(new Set(names).size).toBeGreaterThan(1990);
    const numbers = names.map((n) => Number(n.slice(7)));
    const ascending = numbers.filter((n, i) => i > 0 && n > numbers[i - 1]!).length;
    // a monotone derivation would make this 1999; independent names sit near half
    expect(ascending).toBeGreaterThan(800);
    expect(ascending).toBeLessThan(1200);
  });
});
