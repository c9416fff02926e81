import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { ENGAGEMENT_KEYS, type EngagementKey } from './components.js';
import { assessTrust, cleanSendsNeeded, normalQuantile, scoreFromRates, wilsonInterval, type PreviousTrustState, type TrustCounts, ZERO_COUNTS } from './trust-score.js';

const w = DEFAULT_SETTINGS.trust;
const now = new Date('2026-11-22T00:00:00Z');
const counts = (c: Partial<TrustCounts>): TrustCounts => ({ ...ZERO_COUNTS, ...c });
const ALL = new Set<EngagementKey>(ENGAGEMENT_KEYS);
const NONE = new Set<EngagementKey>();
/** One lane's counts (external unless said), engagement reported unless said. */
const assess = (c: TrustCounts, o: { authenticated?: boolean; previous?: PreviousTrustState | null; reported?: Set<EngagementKey>; warming?: TrustCounts; warmingEngagementPct?: Partial<Record<EngagementKey, number>> } = {}) =>
  assessTrust({ lanes: { external: c, warming: o.warming ?? ZERO_COUNTS }, reported: o.reported ?? ALL, authenticated: o.authenticated ?? true, previous: o.previous ?? null, now, ...(o.warmingEngagementPct ? { warmingEngagementPct: o.warmingEngagementPct } : {}) }, w);
const rates = (r: Partial<Record<'replies' | 'opens' | 'bounces' | 'complaints', number>>) => ({ replies: 0, opens: 0, bounces: 0, complaints: 0, ...r });

describe('the formula (scoreFromRates)', () => {
  it.each([
    ['authenticated, nothing else', rates({}), true, 50],
    ['not authenticated', rates({}), false, 0],
    ['5% bounces take 50 points', rates({ bounces: 5 }), true, 0],
    ['1% bounces take 10 points', rates({ bounces: 1 }), true, 40],
    ['a 0.3% complaint rate zeroes the score', rates({ replies: 20, opens: 50, complaints: 0.3 }), true, 0],
    ['0.1% complaints take 100 points', rates({ complaints: 0.1 }), true, 0],
    ['+1.5 per 1% replies', rates({ replies: 10 }), true, 65],
    ['+0.2 per 1% opens', rates({ opens: 50 }), true, 60],
    ['clamped at 100', rates({ replies: 40, opens: 60 }), true, 100],
    ['the lock line: 10% replies, 25% opens, 0.5% bounces', rates({ replies: 10, opens: 25, bounces: 0.5 }), true, 65],
  ])('%s', (_name, r, authenticated, expected) => {
    expect(scoreFromRates(r, authenticated, w).score).toBeCloseTo(expected, 6);
  });

  it('reports each term\'s contribution', () => {
    expect(scoreFromRates(rates({ replies: 2, opens: 30, bounces: 0.5, complaints: 0.02 }), true, w).contributions).toEqual({
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
    const a = assess(counts({ sent: 10, delivered: 9, hardBounces: 1 }), { authenticated: true, previous: null });
    expect(a.basis).toBe('insufficient_sample');
    expect(a.locked).toBe(false);
  });

  it('nor do 200 sends whose score is below the line only by noise (the confidence bound)', () => {
    // point score about 63 < 70, but with the rates at their optimistic Wilson ends it is above
    const a = assess(counts({ sent: 200, delivered: 198, hardBounces: 2, opens: 60, replies: 22 }), { authenticated: true, previous: null });
    expect(a.basis).toBe('wilson_interval');
    expect(a.score).toBeLessThan(70);
    expect(a.score_bounds.optimistic).toBeGreaterThanOrEqual(70);
    expect(a.locked).toBe(false);
    // the same rates over 20 000 sends are no longer noise
    const big = assess(counts({ sent: 20000, delivered: 19800, hardBounces: 200, opens: 6000, replies: 2200 }), { authenticated: true, previous: null });
    expect(big.locked).toBe(true);
  });

  it('the score bounds bracket the score', () => {
    const a = assess(counts({ sent: 500, delivered: 490, hardBounces: 10, complaints: 1, opens: 200, replies: 40 }), { authenticated: true, previous: null });
    expect(a.score_bounds.optimistic).toBeGreaterThanOrEqual(a.score);
    expect(a.score_bounds.pessimistic).toBeLessThanOrEqual(a.score);
  });

  it('5 bounces in 100 sends lock; 400 clean sends bring bounces back to 1%, and the unlock target comes from the rule itself', () => {
    // a tenant that reports no engagement: its external mail engages at the priors (12% replies, 50% opens: +28)
    const a = assess(counts({ sent: 100, delivered: 95, hardBounces: 5 }), { reported: NONE });
    expect(a.score).toBe(28);
    // the prior is an assumption, not a sample: only the observed bounces give the benefit of the doubt
    expect(a.rates.replies).toMatchObject({ wilson_low_pct: 12, wilson_high_pct: 12 });
    expect(a.locked).toBe(true);
    expect(a.lock_changed).toBe(true);
    expect(a.locked_at).toEqual(now);
    expect(a.rehabilitation!.milestones.bounces).toEqual({ current_pct: 5, target_pct: 1, clean_sends_needed: 400 });
    // at 1% bounces the score is 68 (< 75): unlocking takes more, and the tenant is told exactly how many
    const x = a.rehabilitation!.clean_sends_needed!;
    expect(x).toBeGreaterThan(400);
    expect(a.rehabilitation!.target_at_lock).toBe(x);
    expect(a.rehabilitation!.instructions).toContain(`Send ${x} clean warming messages`);
    expect(a.rehabilitation!.instructions).toContain('400 bring bounces from 5% to 1%');
  });

  it("a tenant that does what its rehabilitation says unlocks, and one send fewer does not", () => {
    const start = counts({ sent: 100, delivered: 95, hardBounces: 5 });
    const locked = assess(start, { reported: NONE });
    const x = locked.rehabilitation!.clean_sends_needed!;
    const previous = { locked: true, lockKind: 'score' as const, lockedAt: now, lockReason: locked.lock_reason, rehabTargetSends: x };
    // clean warming sends, at the engagement the tenant has now (the rule's assumption)
    const after = (n: number) => {
      const r = locked.rates;
      const warming = counts({ sent: n, delivered: n, replies: (n * r.replies.raw_pct) / 100, opens: (n * r.opens.raw_pct) / 100 });
      return assess(start, { reported: NONE, previous, warming });
    };
    expect(after(x)).toMatchObject({ locked: false, lock_changed: true });
    expect(after(x).score).toBeGreaterThanOrEqual(w.unlock_at_or_above);
    expect(after(x - 1).locked).toBe(true);
  });

  it('the engagement the target counts on is stated, and sends that engage at it unlock', () => {
    const start = counts({ sent: 100, delivered: 95, hardBounces: 5 });
    // how warming mail engages across the network, a little above the priors
    const network = { replies: 12.6, opens: 50.4 };
    const locked = assess(start, { reported: NONE, warmingEngagementPct: network });
    expect(locked.rehabilitation!.assumed_engagement_pct).toEqual(network);
    const x = locked.rehabilitation!.clean_sends_needed!;
    const previous = { locked: true, lockKind: 'score' as const, lockedAt: now, lockReason: locked.lock_reason, rehabTargetSends: x };
    const after = (n: number, pct: { replies: number; opens: number }) =>
      assess(start, { reported: NONE, previous, warmingEngagementPct: network, warming: counts({ sent: n, delivered: n, replies: (n * pct.replies) / 100, opens: (n * pct.opens) / 100 }) });
    expect(after(x, network).locked).toBe(false);
    expect(after(x - 1, network).locked).toBe(true);
    // at the priors instead (a little less) the same number of sends is not enough
    expect(after(x, { replies: 12, opens: 50 }).locked).toBe(true);
  });

  it('when clean sends alone cannot unlock, the tenant is told, with the engagement it needs, and no unlock date is promised', () => {
    // it reports engagement and has none: 50 at best, 75 needed
    const a = assess(counts({ sent: 100, delivered: 95, hardBounces: 5 }), { reported: ALL });
    expect(a.locked).toBe(true);
    expect(a.rehabilitation!.clean_sends_needed).toBeNull();
    expect(a.rehabilitation!.engagement_points_needed).toBeCloseTo(25.01, 2);
    expect(a.rehabilitation!.milestones.bounces.clean_sends_needed).toBe(400);
    expect(a.rehabilitation!.instructions).toMatch(/clean sends alone cannot unlock external sending/i);
  });

  it('missing engagement is not zero engagement: a clean tenant that reports none scores base + priors and sends', () => {
    const clean = counts({ sent: 1000, delivered: 1000 });
    const unreported = assess(clean, { reported: NONE });
    expect(unreported.score).toBe(78);
    expect(unreported.locked).toBe(false);
    expect(unreported.rates.replies).toMatchObject({ source: 'prior', raw_pct: 12, imputed: 120 });
    // the same tenant declaring it reports engagement, with none reported, is judged on what it reports
    const reportedNone = assess(clean, { reported: ALL });
    expect(reportedNone.score).toBe(50);
    expect(reportedNone.locked).toBe(true);
    // its warming lane is measured by the platform and counts as observed either way
    const withWarming = assess(clean, { reported: NONE, warming: counts({ sent: 1000, delivered: 1000, replies: 400 }) });
    expect(withWarming.rates.replies).toMatchObject({ source: 'prior', numerator: 520, denominator: 2000 });
  });

  it('property: the rehabilitation target unlocks under assessTrust, and one fewer does not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 5000 }),
        fc.double({ min: 0.01, max: 0.1, noNaN: true }),
        fc.double({ min: 0, max: 0.004, noNaN: true }),
        fc.double({ min: 0.1, max: 0.3, noNaN: true }),
        fc.double({ min: 0.2, max: 0.8, noNaN: true }),
        (sent, bounceF, complaintF, replyF, openF) => {
          const hardBounces = Math.max(1, Math.floor(sent * bounceF));
          const delivered = sent - hardBounces;
          const c = counts({ sent, delivered, hardBounces, complaints: Math.floor(sent * complaintF), replies: Math.floor(delivered * replyF), opens: Math.floor(delivered * openF) });
          const a = assess(c);
          if (!a.locked || a.rehabilitation!.clean_sends_needed === null) return;
          const x = a.rehabilitation!.clean_sends_needed;
          const previous = { locked: true, lockKind: 'score' as const, lockedAt: now, lockReason: 'x', rehabTargetSends: x };
          const after = (n: number) => assess({ ...c, sent: c.sent + n, delivered: c.delivered + n, replies: (c.replies * (c.delivered + n)) / c.delivered, opens: (c.opens * (c.delivered + n)) / c.delivered }, { previous });
          expect(after(x).locked).toBe(false);
          if (x > Math.max(0, w.min_sample - c.sent)) expect(after(x - 1).locked).toBe(true);
        },
      ),
    );
  });

  it('an authentication lock lifts as soon as the domain verifies; a score lock does not', () => {
    const authLock = { locked: true, lockKind: 'authentication' as const, lockedAt: now, lockReason: 'x', rehabTargetSends: 0 };
    expect(assess(counts({ sent: 10, delivered: 10 }), { authenticated: true, previous: authLock })).toMatchObject({ locked: false, lock_changed: true });
    const scoreLock = { ...authLock, lockKind: 'score' as const };
    expect(assess(counts({ sent: 10, delivered: 10 }), { authenticated: true, previous: scoreLock })).toMatchObject({ locked: true, lock_changed: false });
    // from an authentication lock to a score lock is a new lock, with its own rehabilitation target
    const bad = assess(counts({ sent: 100, delivered: 95, hardBounces: 5 }), { authenticated: true, previous: authLock, reported: NONE });
    expect(bad).toMatchObject({ locked: true, lock_kind: 'score', lock_changed: true });
    expect(bad.rehabilitation!.target_at_lock).toBe(bad.rehabilitation!.clean_sends_needed);
  });

  it('an unauthenticated domain locks even without a sample', () => {
    const a = assess(ZERO_COUNTS, { authenticated: false, previous: null });
    expect(a).toMatchObject({ locked: true, score: 0 });
    expect(a.lock_reason).toContain('not authenticated');
  });

  it('hysteresis: a locked tenant stays locked between the two thresholds; an unlocked one stays unlocked', () => {
    // 10% replies and 40% opens: 73, between 70 and 75
    const between = counts({ sent: 20000, delivered: 20000, replies: 2000, opens: 8000 });
    const locked = { locked: true, lockKind: 'score' as const, lockedAt: new Date('2026-11-01T00:00:00Z'), lockReason: 'x', rehabTargetSends: 400 };
    const a = assess(between, { authenticated: true, previous: locked });
    expect(a.score).toBeGreaterThanOrEqual(70);
    expect(a.score).toBeLessThan(75);
    expect(a.locked).toBe(true);
    expect(a.locked_at).toEqual(locked.lockedAt);
    expect(a.rehabilitation!.target_at_lock).toBe(400);
    const b = assess(between, { authenticated: true, previous: { locked: false, lockKind: null, lockedAt: null, lockReason: null, rehabTargetSends: null } });
    expect(b.locked).toBe(false);
  });

  it('unlocks at or above the unlock threshold', () => {
    const good = counts({ sent: 20000, delivered: 20000, replies: 3000, opens: 10000 });
    const a = assess(good, { authenticated: true, previous: { locked: true, lockKind: 'score', lockedAt: now, lockReason: 'x', rehabTargetSends: 1 } });
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
      const s = assess(c, { authenticated: auth, previous: null }).score;
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(100);
    }));
  });

  it('property: more bounces or complaints never raise the score', () => {
    fc.assert(fc.property(arbCounts, fc.integer({ min: 1, max: 50 }), (c, extra) => {
      const base = assess(c, { authenticated: true, previous: null }).score;
      const moreB = assess({ ...c, hardBounces: Math.min(c.sent, c.hardBounces + extra) }, { authenticated: true, previous: null }).score;
      const moreC = assess({ ...c, complaints: Math.min(c.sent, c.complaints + extra) }, { authenticated: true, previous: null }).score;
      expect(moreB).toBeLessThanOrEqual(base);
      expect(moreC).toBeLessThanOrEqual(base);
    }));
  });

  it('property: more replies or opens never lower the score', () => {
    fc.assert(fc.property(arbCounts, fc.integer({ min: 1, max: 50 }), (c, extra) => {
      const base = assess(c, { authenticated: true, previous: null }).score;
      const moreR = assess({ ...c, replies: Math.min(c.delivered, c.replies + extra) }, { authenticated: true, previous: null }).score;
      const moreO = assess({ ...c, opens: Math.min(c.delivered, c.opens + extra) }, { authenticated: true, previous: null }).score;
      expect(moreR).toBeGreaterThanOrEqual(base);
      expect(moreO).toBeGreaterThanOrEqual(base);
    }));
  });

  it('property: authentication never lowers the score', () => {
    fc.assert(fc.property(arbCounts, (c) => {
      expect(assess(c, { authenticated: true, previous: null }).score).toBeGreaterThanOrEqual(
        assess(c, { authenticated: false, previous: null }).score,
      );
    }));
  });

  it('property: below the minimum sample an authenticated tenant\'s lock state never changes', () => {
    fc.assert(fc.property(arbCounts.filter((c) => c.sent < w.min_sample), fc.boolean(), (c, wasLocked) => {
      const prev = { locked: wasLocked, lockKind: wasLocked ? ('score' as const) : null, lockedAt: wasLocked ? now : null, lockReason: wasLocked ? 'x' : null, rehabTargetSends: null };
      expect(assess(c, { authenticated: true, previous: prev }).locked).toBe(wasLocked);
    }));
  });
});
