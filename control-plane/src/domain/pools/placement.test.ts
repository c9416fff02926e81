import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { decideTier, type CurrentPlacement, type Tier } from './placement.js';

const s = DEFAULT_SETTINGS.placement;
const now = new Date('2026-11-22T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);
const placed = (tier: Tier, hours = 1000, origin: 'engine' | 'operator' = 'engine', expiresInH: number | null = null): CurrentPlacement => ({
  tier,
  origin,
  placedAt: hoursAgo(hours),
  overrideExpiresAt: expiresInH === null ? null : new Date(now.getTime() + expiresInH * 3_600_000),
});

describe('decideTier', () => {
  it.each<[string, number, boolean, CurrentPlacement | null, Tier, boolean]>([
    ['new tenant, score 95', 95, false, null, 'premium', true],
    ['new tenant, score 80', 80, false, null, 'standard', true],
    ['new tenant, locked', 40, true, null, 'rehabilitation', true],
    ['premium stays at 88 (hysteresis: leaves below 87)', 88, false, placed('premium'), 'premium', false],
    ['premium leaves at 86.9', 86.9, false, placed('premium'), 'standard', true],
    ['standard at 89.9 stays standard', 89.9, false, placed('standard'), 'standard', false],
    ['standard at 90 after the dwell goes premium', 90, false, placed('standard', 100), 'premium', true],
    ['standard at 95 inside the dwell waits', 95, false, placed('standard', 10), 'standard', false],
    ['premium locked drops to rehabilitation at once, dwell or not', 95, true, placed('premium', 1), 'rehabilitation', true],
    ['rehabilitation unlocked inside the dwell waits', 80, false, placed('rehabilitation', 5), 'rehabilitation', false],
    ['rehabilitation unlocked after the dwell goes standard', 80, false, placed('rehabilitation', 80), 'standard', true],
    ['an active operator override holds', 20, true, placed('premium', 1, 'operator', 5), 'premium', false],
    ['an expired override hands back to the engine', 80, false, placed('premium', 100, 'operator', -1), 'standard', true],
    ['an expired override on the right tier is re-recorded as the engine\'s', 80, false, placed('standard', 100, 'operator', -1), 'standard', true],
  ])('%s', (_n, score, locked, current, tier, changed) => {
    const d = decideTier({ score, locked, sampleSufficient: true, quarantine: null, current, now }, s);
    expect(d.tier).toBe(tier);
    expect(d.changed).toBe(changed);
    expect(d.reason.length).toBeGreaterThan(10);
  });

  it('quarantine beats everything but an operator override, until it ends', () => {
    const q = { until: new Date(now.getTime() + 3_600_000), reason: 'bad apple' };
    expect(decideTier({ score: 99, locked: false, sampleSufficient: true, quarantine: q, current: placed('premium'), now }, s)).toMatchObject({ tier: 'quarantine', changed: true });
    expect(decideTier({ score: 99, locked: false, sampleSufficient: true, quarantine: q, current: placed('standard', 1, 'operator', 2), now }, s).tier).toBe('standard');
    const ended = { until: hoursAgo(1), reason: 'bad apple' };
    expect(decideTier({ score: 50, locked: true, sampleSufficient: true, quarantine: ended, current: placed('quarantine', 100), now }, s).tier).toBe('rehabilitation');
  });

  it('never grants premium on a sample below the minimum', () => {
    expect(decideTier({ score: 98, locked: false, sampleSufficient: false, quarantine: null, current: null, now }, s)).toMatchObject({ tier: 'standard' });
    expect(decideTier({ score: 98, locked: false, sampleSufficient: false, quarantine: null, current: placed('standard'), now }, s)).toMatchObject({ tier: 'standard', changed: false });
    expect(decideTier({ score: 98, locked: false, sampleSufficient: false, quarantine: null, current: placed('premium'), now }, s).tier).toBe('premium');
  });

  it('says why the dwell held a move back, and where it would go', () => {
    const d = decideTier({ score: 95, locked: false, sampleSufficient: true, quarantine: null, current: placed('standard', 10), now }, s);
    expect(d.deferredTo).toBe('premium');
    expect(d.reason).toContain('minimum dwell');
    expect(d.inputs).toMatchObject({ score: 95, current_tier: 'standard' });
  });
});
