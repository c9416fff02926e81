import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BloomFilter } from './bloom-filter.js';

describe('the Bloom filter', () => {
  it('property: never says "no" to something added', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 300 }), (values) => {
      const f = new BloomFilter(Math.max(10, values.length));
      for (const v of values) f.add(v);
      for (const v of values) expect(f.mightContain(v)).toBe(true);
    }));
  });

  it('keeps false positives near the rate it was sized for', () => {
    const f = new BloomFilter(20_000, 0.01);
    for (let i = 0; i < 20_000; i++) f.add(`tenant-a user${i}@example.com`);
    let fp = 0;
    for (let i = 0; i < 20_000; i++) if (f.mightContain(`tenant-a other${i}@example.org`)) fp++;
    expect(fp / 20_000).toBeLessThan(0.02);
    expect(fp).toBeGreaterThanOrEqual(0);
  });

  it('an empty filter contains nothing', () => {
    const f = new BloomFilter(100);
    expect(f.mightContain('anything')).toBe(false);
  });
});
