import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { capsAsThrottles, capsForDay, decideWarmup, rampLength, type ProviderCaps, type WarmupInputs } from './warmup.js';

const s = DEFAULT_SETTINGS.ip_warmup;
const now = new Date('2026-11-22T00:05:00Z');
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
const fill = (caps: ProviderCaps, f: number): ProviderCaps => ({ gmail: Math.round(caps.gmail * f), microsoft: Math.round(caps.microsoft * f), yahoo: Math.round(caps.yahoo * f), other: Math.round(caps.other * f) });
const input = (over: Partial<WarmupInputs>): WarmupInputs => ({
  state: 'warming', day: 3, stateChangedAt: daysAgo(3), lastSentAt: daysAgo(0.1), yesterday: { sent: fill(capsForDay(3, s), 1), hardBounces: 0, complaints: 0 }, now, ...over,
});

describe('warm-up schedule', () => {
  it('starts small and grows about x1.4 a day per provider, up to the ceiling', () => {
    expect(capsForDay(0, s)).toEqual({ gmail: 50, microsoft: 50, yahoo: 50, other: 100 });
    expect(capsForDay(1, s)).toEqual({ gmail: 70, microsoft: 70, yahoo: 70, other: 140 });
    expect(capsForDay(10, s).gmail).toBe(Math.round(50 * 1.4 ** 10));
    expect(capsForDay(60, s)).toEqual(s.max_per_day);
    for (let d = 0; d < 40; d++) for (const p of ['gmail', 'microsoft', 'yahoo', 'other'] as const) expect(capsForDay(d + 1, s)[p]).toBeGreaterThanOrEqual(capsForDay(d, s)[p]);
  });

  it('compiles to KumoMTA throttle specs', () => {
    expect(capsAsThrottles(capsForDay(0, s))).toEqual({ gmail: '50/d,max_burst=3', microsoft: '50/d,max_burst=3', yahoo: '50/d,max_burst=3', other: '100/d,max_burst=5' });
  });

  it('the ramp completes when every provider reaches its ceiling', () => {
    const n = rampLength(s);
    expect(n).toBeGreaterThan(20);
    expect(capsForDay(n, s)).toEqual(s.max_per_day);
    expect(capsForDay(n - 1, s)).not.toEqual(s.max_per_day);
  });

  it.each<[string, Partial<WarmupInputs>, string]>([
    ['a full, clean day advances', {}, 'advance'],
    ['a day filled to 92% advances', { yesterday: { sent: fill(capsForDay(3, s), 0.92), hardBounces: 0, complaints: 0 } }, 'advance'],
    ['a day filled to 50% repeats', { yesterday: { sent: fill(capsForDay(3, s), 0.5), hardBounces: 0, complaints: 0 } }, 'hold'],
    ['a day with 3% bounces repeats', { yesterday: { sent: fill(capsForDay(3, s), 1), hardBounces: 20, complaints: 0 } }, 'hold'],
    ['a day with 0.5% complaints repeats', { yesterday: { sent: fill(capsForDay(3, s), 1), hardBounces: 0, complaints: 3 } }, 'hold'],
    ['the last day completes the ramp', { day: rampLength(DEFAULT_SETTINGS.ip_warmup) - 1, yesterday: { sent: fill(capsForDay(rampLength(DEFAULT_SETTINGS.ip_warmup) - 1, s), 1), hardBounces: 0, complaints: 0 } }, 'complete'],
    ['an active IP idle for 30 days re-warms', { state: 'active', lastSentAt: daysAgo(31) }, 'rewarm'],
    ['an active IP in use stays active', { state: 'active', lastSentAt: daysAgo(1) }, 'none'],
    ['a quarantined IP rests', { state: 'quarantined', stateChangedAt: daysAgo(3) }, 'none'],
    ['a quarantined IP that rested 14 days warms again', { state: 'quarantined', stateChangedAt: daysAgo(14) }, 'rested'],
  ])('%s', (_n, over, kind) => {
    const a = decideWarmup(input(over), s);
    expect(a.kind).toBe(kind);
    if (a.kind === 'advance') expect(a.toDay).toBe((over.day ?? 3) + 1);
  });
});
