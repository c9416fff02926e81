import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROVIDER_ERROR_CODES, type ProviderErrorCode } from './provider-errors.js';
import { backoffDelayMs, decideRetry, DEFAULT_RETRY_POLICY, pollBatches, pollDelayMs, DEFAULT_POLL_POLICY, type RetryPolicy } from './retry-policy.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, multiplier: 2, maxDelayMs: 1000 };

describe('retry decisions', () => {
  const table: [ProviderErrorCode, boolean, boolean, string][] = [
    ['PROVIDER_LOCKED', false, false, 'retry'],
    ['PROVIDER_CONFLICT', false, false, 'retry'],
    ['PROVIDER_RATE_LIMITED', false, false, 'retry'],
    ['PROVIDER_UNAVAILABLE', true, false, 'retry'],
    ['PROVIDER_NETWORK', true, false, 'retry'],
    ['PROVIDER_NETWORK', false, true, 'reconcile'],
    ['PROVIDER_UNAVAILABLE', false, true, 'reconcile'],
    ['PROVIDER_TIMEOUT', false, false, 'give_up'],
    ['PROVIDER_TOKEN_READ_ONLY', true, true, 'give_up'],
    ['PROVIDER_INVALID_INPUT', true, true, 'give_up'],
    ['PROVIDER_NOT_FOUND', true, true, 'give_up'],
    ['PROVIDER_RESOURCE_LIMIT', true, true, 'give_up'],
    ['PROVIDER_UNIQUENESS', false, true, 'give_up'],
    ['PROVIDER_ACTION_FAILED', true, true, 'give_up'],
  ];
  it.each(table)('%s (idempotent %s, reconcilable %s) → %s', (code, idempotent, canReconcile, want) => {
    expect(decideRetry({ code, attempt: 1, idempotent, canReconcile, jitter01: 0.5 }, policy).action).toBe(want);
  });

  it('stops after the last attempt', () => {
    expect(decideRetry({ code: 'PROVIDER_LOCKED', attempt: 4, idempotent: true, canReconcile: false, jitter01: 0 }, policy)).toEqual({ action: 'give_up', reason: 'attempts_exhausted' });
  });

  it('leaves pacing a rate limit to the budget, but honours a Retry-After', () => {
    expect(decideRetry({ code: 'PROVIDER_RATE_LIMITED', attempt: 1, idempotent: true, canReconcile: false, jitter01: 0.9 }, policy)).toEqual({ action: 'retry', delayMs: 0 });
    expect(decideRetry({ code: 'PROVIDER_RATE_LIMITED', attempt: 1, idempotent: true, canReconcile: false, jitter01: 0.9, retryAfterMs: 700 }, policy)).toEqual({ action: 'retry', delayMs: 700 });
  });

  it('backs off exponentially up to the cap', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelayMs(policy, n, 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelayMs(DEFAULT_RETRY_POLICY, 0, 0)).toBe(1000);
  });

  it('property: delays stay within [base, cap] and never shrink as retries grow (same jitter)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, j) => {
        const d = backoffDelayMs(policy, n, j);
        expect(d).toBeGreaterThanOrEqual(policy.baseDelayMs);
        expect(d).toBeLessThanOrEqual(policy.maxDelayMs);
        expect(backoffDelayMs(policy, n + 1, j)).toBeGreaterThanOrEqual(d);
      }),
    );
  });

  it('property: a request that may have landed is never blindly resent unless idempotent', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PROVIDER_ERROR_CODES), fc.integer({ min: 1, max: 10 }), fc.boolean(), fc.boolean(), (code, attempt, idempotent, canReconcile) => {
        const d = decideRetry({ code, attempt, idempotent, canReconcile, jitter01: 0 }, policy);
        if (d.action === 'retry' && ['PROVIDER_NETWORK', 'PROVIDER_UNAVAILABLE', 'PROVIDER_TIMEOUT'].includes(code)) expect(idempotent).toBe(true);
        if (d.action !== 'give_up') expect(attempt).toBeLessThan(policy.maxAttempts);
      }),
    );
  });
});

describe('action polling', () => {
  it('starts quick and slows to a cap', () => {
    expect([0, 1, 2, 20].map((n) => pollDelayMs(DEFAULT_POLL_POLICY, n))).toEqual([500, 750, 1125, 10_000]);
  });
  it('batches ids, deduplicated and in numeric-then-text order', () => {
    expect(pollBatches(['10', '2', '2', '33', '1'], 2)).toEqual([['1', '2'], ['10', '33']]);
  });
  it('property: batches cover every id exactly once and respect the size', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 10 ** 9 }).map(String)), fc.integer({ min: 1, max: 30 }), (ids, size) => {
        const batches = pollBatches(ids, size);
        expect(batches.flat().sort()).toEqual([...new Set(ids)].sort());
        for (const b of batches) expect(b.length).toBeLessThanOrEqual(size);
      }),
    );
  });
});
