import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, effectiveSettings, SETTINGS_SCHEMAS, SETTINGS_SECTIONS } from './settings.js';

describe('settings', () => {
  it('defaults carry the product numbers and validate', () => {
    for (const s of SETTINGS_SECTIONS) expect(SETTINGS_SCHEMAS[s].safeParse(DEFAULT_SETTINGS[s]).success).toBe(true);
    expect(DEFAULT_SETTINGS.costs).toMatchObject({ ip_monthly_usd: 4.99, vps_monthly_usd: 9.99 });
    expect(DEFAULT_SETTINGS.trust).toMatchObject({ base_authenticated: 50, reply_points_per_pct: 1.5, open_points_per_pct: 0.2, bounce_points_per_pct: 10, complaint_points_per_tenth_pct: 100, lock_below: 70 });
    expect(DEFAULT_SETTINGS.placement).toMatchObject({ premium_min_score: 90, standard_min_score: 70, max_node_share_pct: 25 });
  });

  it.each([
    ['trust', { unlock_at_or_above: 60 }, 'hysteresis'],
    ['placement', { premium_min_score: 60 }, 'premium_min_score must be greater'],
    ['placement', { bounce_review_pct: 6 }, 'stricter than the public ones'],
    ['placement', { complaint_pause_pct: 0.5 }, 'stricter than the public ones'],
    ['mailbox_warmup', { first_two_weeks_cap: 500 }, 'must not exceed max_per_day'],
    ['trust', { surprise: 1 }, 'Unrecognized key'],
  ] as const)('%s rejects %j', (section, patch, message) => {
    const r = SETTINGS_SCHEMAS[section].safeParse({ ...DEFAULT_SETTINGS[section], ...patch });
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues.map((i) => i.message).join(' ')).toContain(message);
  });

  it('merges stored values over defaults, and ignores a stored section that no longer validates', () => {
    const s = effectiveSettings({ costs: { ip_monthly_usd: 3.5 }, trust: { lock_below: 99, unlock_at_or_above: 10 } });
    expect(s.costs).toEqual({ ...DEFAULT_SETTINGS.costs, ip_monthly_usd: 3.5 });
    expect(s.trust).toEqual(DEFAULT_SETTINGS.trust);
  });
});
