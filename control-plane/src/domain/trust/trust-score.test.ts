import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { assessTrust, cleanSendsNeeded, normalQuantile, scoreFromRates, wilsonInterval, type TrustCounts, ZERO_COUNTS } from './trust-score.js';

const w = DEFAULT_SETTINGS.trust;
const now = new Date('2026-11-22T00:00:00Z');
const counts = (c: Partial<TrustCounts>): TrustCounts => ({ ...ZERO_COUNTS, ...c });

describe('the formula (scoreFromRates)', () => {
  it.each([
    ['authenticated, nothing else', { replyPct: 0, openPct: 0, bouncePct: 0, complaintPct: 0 }, true, 50],
    ['not authenticated', { replyPct: 0, openPct: 0, bouncePct: 0, complaintPct: 0 }, false, 0],
    ['5% bounces take 50 points', { replyPct: 0, openPct: 0, bouncePct: 5, complaintPct: 0 }, true, 0],
    ['1% bounces take 10 points', { replyPct: 0, openPct: 0, bouncePct: 1, complaintPct: 0 }, true, 40],
    ['a 0.3% complaint rate zeroes the score', { replyPct: 20, openPct: 50, bouncePct: 0, complaintPct: 0.3 }, true, 0],
    ['0.1% complaints take 100 points', { replyPct: 0, openPct: 0, bouncePct: 0, complaintPct: 0.1 }, true, 0],
    ['+1.5 per 1% replies', { replyPct: 10, openPct: 0, bouncePct: 0, complaintPct: 0 }, true, 65],
    ['+0.2 per 1% opens', { replyPct: 0, openPct: 50, bouncePct: 0, complaintPct: 0 }, true, 60],
    ['clamped at 100', { replyPct: 40, openPct: 60, bouncePct: 0, complaintPct: 0 }, true, 100],
    ['the lock line: 10% replies, 25% opens, 0.5% bounces', { replyPct: 10, openPct: 25, bouncePct: 0.5, complaintPct: 0 }, true, 65],
  ])('%s', (_name, rates, authenticated, expected) => {
    expect(scoreFromRates(rates, authenticated, w).score).toBeCloseTo(expected, 6);
  });

  it('reports each term\'s contribution', () => {
    expect(scoreFromRates({ replyPct: 2, openPct: 30, bouncePct: 0.5, complaintPct: 0.02 }, true, w).contributions).toEqual({
      base: 50, replies: 3, opens: 6, bounces: -5, complaints: -20,
    });
  });
});

describe('rehabilitation arithmetic', () => {
  it.each([
    [5, 100, 1, 400],
    [1, 100, 1, 0],
    [0, 0, 1, 0],
    [10, 100, 1, 900],
    [3, 1000, 0.1, 2000],
    [7, 333, 1, 367],
    [1, 999, 0.1, 1],
  ])('%i bad in %i sends at %f%% needs %i clean sends', (bad, sends, target, expected) => {
    expect(cleanSendsNeeded(bad, sends, target)).toBe(expected);
  });

  it('after the clean sends the rate is at or below target, and one fewer is not enough', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 20000 }), fc.constantFrom(0.1, 0.5, 1, 2, 5), (bad, sends, target) => {
        const x = cleanSendsNeeded(bad, sends, target);
        expect(bad / (sends + x)).toBeLessThanOrEqual(target / 100 + 1e-12);
        if (x > 0) expect(bad / (sends + x - 1)).toBeGreaterThan(target / 100);
      }),
    );
  });
});

describe('statistics', () => {
  it('normal quantiles', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.005)).toBeCloseTo(-2.575829, 5);
  });

  it('Wilson interval: known values, and it contains the point estimate', () => {
    const i = wilsonInterval(1, 10, 0.95);
    expect(i.low).toBeCloseTo(0.01788, 4);
    expect(i.high).toBeCloseTo(0.40415, 4);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, f) => {
        const k = Math.floor(f * n);
        const { low, high } = wilsonInterval(k, n, 0.95);
        expect(low).toBeLessThanOrEqual(k / n + 1e-12);
        expect(high).toBeGreaterThanOrEqual(k / n - 1e-12);
      }),
    );
  });
});

describe('assessTrust', () => {
  it('ten sends with one bounce do not lock a tenant (minimum sample)', () => {
    const a = assessTrust({ counts: counts({ sent: 10, delivered: 9, hardBounces: 1 }), authenticated: true, previous: null, now }, w);
    expect(a.basis).toBe('insufficient_sample');
    expect(a.locked).toBe(false);
  });

  it('nor do 200 sends whose score is below the line only by noise (the confidence bound)', () => {
    // point score about 63 < 70, but with the rates at their optimistic Wilson ends it is above
    const a = assessTrust({ counts: counts({ sent: 200, delivered: 198, hardBounces: 2, opens: 60, replies: 22 }), authenticated: true, previous: null, now }, w);
    expect(a.basis).toBe('wilson_interval');
    expect(a.score).toBeLessThan(70);
    expect(a.score_bounds.optimistic).toBeGreaterThanOrEqual(70);
    expect(a.locked).toBe(false);
    // the same rates over 20 000 sends are no longer noise
    const big = assessTrust({ counts: counts({ sent: 20000, delivered: 19800, hardBounces: 200, opens: 6000, replies: 2200 }), authenticated: true, previous: null, now }, w);
    expect(big.locked).toBe(true);
  });

  it('the score bounds bracket the score', () => {
    const a = assessTrust({ counts: counts({ sent: 500, delivered: 490, hardBounces: 10, complaints: 1, opens: 200, replies: 40 }), authenticated: true, previous: null, now }, w);
    expect(a.score_bounds.optimistic).toBeGreaterThanOrEqual(a.score);
    expect(a.score_bounds.pessimistic).toBeLessThanOrEqual(a.score);
  });

  it('5 bounces in 100 sends with no engagement locks, asking for exactly 400 clean warming sends', () => {
    const a = assessTrust({ counts: counts({ sent: 100, delivered: 95, hardBounces: 5 }), authenticated: true, previous: null, now }, w);
    expect(a.locked).toBe(true);
    expect(a.lock_changed).toBe(true);
    expect(a.locked_at).toEqual(now);
    expect(a.rehabilitation).toMatchObject({ clean_sends_needed: 400, target_at_lock: 400, score_needed: 75, bounce: { current_pct: 5, clean_sends_needed: 400 } });
    expect(a.rehabilitation!.instructions).toContain('400 clean warming messages');
  });

  it('an authentication lock lifts as soon as the domain verifies; a score lock does not', () => {
    const authLock = { locked: true, lockKind: 'authentication' as const, lockedAt: now, lockReason: 'x', rehabTargetSends: 0 };
    expect(assessTrust({ counts: counts({ sent: 10, delivered: 10 }), authenticated: true, previous: authLock, now }, w)).toMatchObject({ locked: false, lock_changed: true });
    const scoreLock = { ...authLock, lockKind: 'score' as const };
    expect(assessTrust({ counts: counts({ sent: 10, delivered: 10 }), authenticated: true, previous: scoreLock, now }, w)).toMatchObject({ locked: true, lock_changed: false });
    // from an authentication lock to a score lock is a new lock, with its own rehabilitation target
    const bad = assessTrust({ counts: counts({ sent: 100, delivered: 95, hardBounces: 5 }), authenticated: true, previous: authLock, now }, w);
    expect(bad).toMatchObject({ locked: true, lock_kind: 'score', lock_changed: true, rehabilitation: { target_at_lock: 400 } });
  });

  it('an unauthenticated domain locks even without a sample', () => {
    const a = assessTrust({ counts: ZERO_COUNTS, authenticated: false, previous: null, now }, w);
    expect(a).toMatchObject({ locked: true, score: 0 });
    expect(a.lock_reason).toContain('not authenticated');
  });

  it('hysteresis: a locked tenant stays locked between the two thresholds; an unlocked one stays unlocked', () => {
    // 10% replies and 40% opens: 73, between 70 and 75
    const between = counts({ sent: 20000, delivered: 20000, replies: 2000, opens: 8000 });
    const locked = { locked: true, lockKind: 'score' as const, lockedAt: new Date('2026-11-01T00:00:00Z'), lockReason: 'x', rehabTargetSends: 400 };
    const a = assessTrust({ counts: between, authenticated: true, previous: locked, now }, w);
    expect(a.score).toBeGreaterThanOrEqual(70);
    expect(a.score).toBeLessThan(75);
    expect(a.locked).toBe(true);
    expect(a.locked_at).toEqual(locked.lockedAt);
    expect(a.rehabilitation!.target_at_lock).toBe(400);
    const b = assessTrust({ counts: between, authenticated: true, previous: { locked: false, lockKind: null, lockedAt: null, lockReason: null, rehabTargetSends: null }, now }, w);
    expect(b.locked).toBe(false);
  });

  it('unlocks at or above the unlock threshold', () => {
    const good = counts({ sent: 20000, delivered: 20000, replies: 3000, opens: 10000 });
    const a = assessTrust({ counts: good, authenticated: true, previous: { locked: true, lockKind: 'score', lockedAt: now, lockReason: 'x', rehabTargetSends: 1 }, now }, w);
    expect(a.score).toBeGreaterThanOrEqual(75);
    expect(a).toMatchObject({ locked: false, lock_changed: true, rehabilitation: null, locked_at: null });
  });

  const arbCounts = fc
    .record({ sent: fc.integer({ min: 0, max: 100000 }), bounceF: fc.double({ min: 0, max: 0.2, noNaN: true }), complaintF: fc.double({ min: 0, max: 0.01, noNaN: true }), openF: fc.double({ min: 0, max: 1, noNaN: true }), replyF: fc.double({ min: 0, max: 0.5, noNaN: true }) })
    .map(({ sent, bounceF, complaintF, openF, replyF }) => {
      const hardBounces = Math.floor(sent * bounceF);
      const delivered = sent - hardBounces;
      return counts({ sent, delivered, hardBounces, complaints: Math.floor(sent * complaintF), opens: Math.floor(delivered * openF), replies: Math.floor(delivered * replyF) });
    });

  it('property: the score is always within [0, 100]', () => {
    fc.assert(fc.property(arbCounts, fc.boolean(), (c, auth) => {
      const s = assessTrust({ counts: c, authenticated: auth, previous: null, now }, w).score;
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(100);
    }));
  });

  it('property: more bounces or complaints never raise the score', () => {
    fc.assert(fc.property(arbCounts, fc.integer({ min: 1, max: 50 }), (c, extra) => {
      const base = assessTrust({ counts: c, authenticated: true, previous: null, now }, w).score;
      const moreB = assessTrust({ counts: { ...c, hardBounces: Math.min(c.sent, c.hardBounces + extra) }, authenticated: true, previous: null, now }, w).score;
      const moreC = assessTrust({ counts: { ...c, complaints: Math.min(c.sent, c.complaints + extra) }, authenticated: true, previous: null, now }, w).score;
      expect(moreB).toBeLessThanOrEqual(base);
      expect(moreC).toBeLessThanOrEqual(base);
    }));
  });

  it('property: more replies or opens never lower the score', () => {
    fc.assert(fc.property(arbCounts, fc.integer({ min: 1, max: 50 }), (c, extra) => {
      const base = assessTrust({ counts: c, authenticated: true, previous: null, now }, w).score;
      const moreR = assessTrust({ counts: { ...c, replies: Math.min(c.delivered, c.replies + extra) }, authenticated: true, previous: null, now }, w).score;
      const moreO = assessTrust({ counts: { ...c, opens: Math.min(c.delivered, c.opens + extra) }, authenticated: true, previous: null, now }, w).score;
      expect(moreR).toBeGreaterThanOrEqual(base);
      expect(moreO).toBeGreaterThanOrEqual(base);
    }));
  });

  it('property: authentication never lowers the score', () => {
    fc.assert(fc.property(arbCounts, (c) => {
      expect(assessTrust({ counts: c, authenticated: true, previous: null, now }, w).score).toBeGreaterThanOrEqual(
        assessTrust({ counts: c, authenticated: false, previous: null, now }, w).score,
      );
    }));
  });

  it('property: below the minimum sample an authenticated tenant\'s lock state never changes', () => {
    fc.assert(fc.property(arbCounts.filter((c) => c.sent < w.min_sample), fc.boolean(), (c, wasLocked) => {
      const prev = { locked: wasLocked, lockKind: wasLocked ? ('score' as const) : null, lockedAt: wasLocked ? now : null, lockReason: wasLocked ? 'x' : null, rehabTargetSends: null };
      expect(assessTrust({ counts: c, authenticated: true, previous: prev, now }, w).locked).toBe(wasLocked);
    }));
  });
});
