import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBudget, observeHeaders, observeRateLimited, parseRateLimitHeaders, reserveRequest, tokensAt, waitBeforeNextMs } from './request-budget.js';

describe('request budget', () => {
  it('lets the bucket’s worth through, then paces at the refill rate', () => {
    let b = createBudget({ limit: 3, refillPerSec: 1, nowMs: 0 });
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = reserveRequest(b, 0);
      b = r.budget;
      waits.push(r.waitMs);
    }
    expect(waits).toEqual([0, 0, 0, 1000, 2000]);
    expect(waitBeforeNextMs(b, 2000)).toBe(1000);
  });

  it('defaults to Hetzner’s 3,600 per hour at one per second', () => {
    const b = createBudget({ nowMs: 0 });
    expect([b.limit, b.refillPerSec]).toEqual([3600, 1]);
  });

  it('parses the headers and ignores garbage', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-limit': '3600', 'ratelimit-remaining': '3599', 'ratelimit-reset': '1731000001' })).toEqual({ limit: 3600, remaining: 3599, resetEpochSec: 1731000001 });
    expect(parseRateLimitHeaders({ 'ratelimit-limit': 'lots', 'ratelimit-remaining': '-1' })).toEqual({});
  });

  it('the provider’s lower remaining wins (another process shares the project); a higher one does not', () => {
    const b = createBudget({ limit: 10, refillPerSec: 1, nowMs: 0 });
    expect(observeHeaders(b, { limit: 10, remaining: 2, resetEpochSec: 8 }, 0).tokens).toBe(2);
    const spent = { ...b, tokens: 1 };
    expect(observeHeaders(spent, { limit: 10, remaining: 9, resetEpochSec: 1 }, 0).tokens).toBe(1);
  });

  it('a 429 empties the bucket and, from RateLimit-Reset, the next request fits after one refill step', () => {
    const b = createBudget({ limit: 3600, refillPerSec: 1, nowMs: 0 });
    const after = observeRateLimited(b, { limit: 3600, remaining: 0, resetEpochSec: 3601 }, 0);
    expect(tokensAt(after, 0)).toBe(0);
    expect(waitBeforeNextMs(after, 0)).toBe(1000);
    // a Retry-After is a floor
    expect(waitBeforeNextMs(observeRateLimited(b, {}, 0, 5000), 0)).toBe(5000);
  });

  it('a slower refill implied by the reset time is believed, a faster one is not', () => {
    const b = createBudget({ limit: 10, refillPerSec: 1, nowMs: 0 });
    // 10 tokens back within (19 s, 20 s]: the faster end is believed
    expect(observeHeaders(b, { limit: 10, remaining: 0, resetEpochSec: 20 }, 0).refillPerSec).toBeCloseTo(10 / 19, 9);
    expect(observeHeaders(b, { limit: 10, remaining: 0, resetEpochSec: 2 }, 0).refillPerSec).toBe(1);
  });

  it('property: requests sent at their reserved times never exceed limit + refill over any window', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 60 }), (limit, rate, gaps) => {
        let b = createBudget({ limit, refillPerSec: rate, nowMs: 0 });
        let now = 0;
        const sent: number[] = [];
        for (const gap of gaps) {
          now += gap;
          const r = reserveRequest(b, now);
          b = r.budget;
          sent.push(now + r.waitMs);
        }
        sent.sort((x, y) => x - y);
        for (let i = 0; i < sent.length; i++) {
          for (let j = i; j < sent.length; j++) {
            const windowSec = (sent[j]! - sent[i]!) / 1000;
            // 2 ms of slack: waits are rounded up to whole milliseconds, which may delay one request
            // while the next one's time (computed from the reservation, not the send) stays put
            expect(j - i + 1).toBeLessThanOrEqual(limit + (windowSec + 0.002) * rate);
          }
        }
      }),
    );
  });

  it('property: waits are never negative and never longer than draining the queue needs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 100 }), (limit, n) => {
        let b = createBudget({ limit, refillPerSec: 1, nowMs: 0 });
        for (let i = 0; i < n; i++) {
          const r = reserveRequest(b, 0);
          b = r.budget;
          expect(r.waitMs).toBeGreaterThanOrEqual(0);
          expect(r.waitMs).toBeLessThanOrEqual(Math.max(0, i + 1 - limit) * 1000);
        }
      }),
    );
  });
});
