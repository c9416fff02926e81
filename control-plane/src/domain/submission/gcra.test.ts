import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseThrottleSpec } from '../policy/throttles.js';
import { budget, parseStoredTat } from './gcra.js';

const spec = parseThrottleSpec('3600/h')!; // one a second, burst 3600

/** kumod's GCRA step (as its Redis script does it), to produce states the reader must understand. */
function consume(tat: number | null, now: number, limit: number, period: number, burst: number): { allowed: boolean; tat: number | null } {
  const interval = period / limit;
  const t = Math.max(tat ?? now, now);
  const next = t + interval;
  return now - (next - burst * interval) >= 0 ? { allowed: true, tat: next } : { allowed: false, tat };
}

describe('GCRA budget reader', () => {
  it('reads both stored formats', () => {
    expect(parseStoredTat(null)).toBeNull();
    expect(parseStoredTat('1763769600.25')).toEqual({ kind: 'seconds', tat: 1763769600.25 });
    expect(parseStoredTat('1763769600250000000')).toEqual({ kind: 'nanoseconds', tat: 1763769600250000000n });
    expect(parseStoredTat('garbage')).toBeNull();
  });

  it.each([
    ['an untouched key is a full bucket', null, 1000, 3600, 0],
    ['10 tokens in use', { kind: 'seconds' as const, tat: 1010 }, 1000, 3590, 0],
    ['a TAT in the past is a full bucket', { kind: 'seconds' as const, tat: 900 }, 1000, 3600, 0],
    ['exhausted', { kind: 'seconds' as const, tat: 1000 + 3600 }, 1000, 0, 1],
    ['redis-cell counts one more', { kind: 'nanoseconds' as const, tat: 1010_000_000_000n }, 1000, 3591, 0],
  ])('%s', (_n, stored, now, remaining, next) => {
    const b = budget(stored, now, spec);
    expect(b.remaining).toBe(remaining);
    expect(b.nextInSeconds).toBeCloseTo(next, 6);
  });

  it('property: after k allowed sends the reader sees burst - k (to within kumod\'s own float rounding), and 0 exactly when kumod would refuse the next', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 80 }), (limit, burst, sends) => {
      const s = { limit, periodSeconds: 3600, maxBurst: burst };
      let tat: number | null = null;
      let allowed = 0;
      for (let i = 0; i < sends; i++) {
        const r = consume(tat, 5000, limit, 3600, burst);
        if (r.allowed) allowed++;
        tat = r.tat;
      }
      const b = budget(tat === null ? null : { kind: 'seconds', tat }, 5000, s);
      expect(Math.abs(b.remaining - (burst - allowed))).toBeLessThanOrEqual(1);
      expect(consume(tat, 5000, limit, 3600, burst).allowed).toBe(b.remaining > 0);
    }));
  });
});
