/**
 * Which tier a tenant's mail leaves from. Pure: the caller supplies the tenant's trust state, its
 * current placement, any active quarantine and the clock.
 *
 *   operator override (until it expires)  >  quarantine (abuse detection)  >  trust lock -> rehabilitation
 *   >  score bands: premium from 90, standard from 70 (the trust lock already covers below 70)
 *
 * Moving to a worse tier happens at once (it protects the pool); moving to a better one waits until the
 * tenant has spent the minimum dwell time where it is, and premium is left only below 90 - hysteresis,
 * so a tenant near a boundary does not flap.
 */
import type { Settings } from '../settings/settings.js';

export const TIERS = ['premium', 'standard', 'rehabilitation', 'quarantine'] as const;
export type Tier = (typeof TIERS)[number];

/** Lower is better. */
export const TIER_RANK: Record<Tier, number> = { premium: 0, standard: 1, rehabilitation: 2, quarantine: 3 };

export type PlacementSettings = Settings['placement'];

export interface CurrentPlacement {
  tier: Tier;
  origin: 'engine' | 'operator';
  placedAt: Date;
  overrideExpiresAt: Date | null;
}

export interface TierInputs {
  score: number;
  locked: boolean;
  /** the score rests on at least the minimum sample; premium is never granted on less */
  sampleSufficient: boolean;
  /** an engine quarantine still in force (abuse detection), with its reason */
  quarantine: { until: Date; reason: string } | null;
  current: CurrentPlacement | null;
  now: Date;
}

export interface TierDecision {
  tier: Tier;
  changed: boolean;
  /** held back by the minimum dwell time: the tier it would have moved to */
  deferredTo: Tier | null;
  reason: string;
  inputs: Record<string, unknown>;
}

/** The band a score earns, with hysteresis against the tier it is in now. */
export function bandFor(score: number, current: Tier | null, s: PlacementSettings): Tier {
  if (score >= s.premium_min_score) return 'premium';
  if (current === 'premium' && score >= s.premium_min_score - s.hysteresis_points) return 'premium';
  return 'standard';
}

export function decideTier(i: TierInputs, s: PlacementSettings): TierDecision {
  const current = i.current;
  const inputs = {
    score: i.score,
    locked: i.locked,
    sample_sufficient: i.sampleSufficient,
    quarantine: i.quarantine ? { until: i.quarantine.until.toISOString(), reason: i.quarantine.reason } : null,
    current_tier: current?.tier ?? null,
    current_since: current?.placedAt.toISOString() ?? null,
    thresholds: { premium_min_score: s.premium_min_score, standard_min_score: s.standard_min_score, hysteresis_points: s.hysteresis_points, min_dwell_hours: s.min_dwell_hours },
  };
  const decide = (tier: Tier, reason: string, deferredTo: Tier | null = null): TierDecision => ({
    tier,
    changed: tier !== current?.tier || (current?.origin === 'operator' && tier === current.tier && !isOverrideActive(current, i.now)),
    deferredTo,
    reason,
    inputs,
  });

  if (current && isOverrideActive(current, i.now)) {
    return { tier: current.tier, changed: false, deferredTo: null, reason: `operator override until ${current.overrideExpiresAt!.toISOString()}`, inputs };
  }
  if (i.quarantine && i.quarantine.until > i.now) return decide('quarantine', `quarantined until ${i.quarantine.until.toISOString()}: ${i.quarantine.reason}`);
  if (i.locked) return decide('rehabilitation', `external sending is locked (score ${i.score}): warming lane only until rehabilitated`);

  if (!i.sampleSufficient && current?.tier !== 'premium') {
    return decide('standard', `score ${i.score} rests on too small a sample for premium: standard until the sample is sufficient`);
  }
  const band = bandFor(i.score, current?.tier ?? null, s);
  const why = band === 'premium'
    ? `score ${i.score} is in the premium band (>= ${s.premium_min_score}${current?.tier === 'premium' ? `, kept down to ${s.premium_min_score - s.hysteresis_points}` : ''})`
    : `score ${i.score} is in the standard band (${s.standard_min_score}-${s.premium_min_score - 0.01})`;
  if (!current || current.origin === 'operator' || TIER_RANK[band] >= TIER_RANK[current.tier]) return decide(band, why);

  // an upgrade: only after the minimum dwell in the current tier
  const dwellMs = s.min_dwell_hours * 3_600_000;
  const since = i.now.getTime() - current.placedAt.getTime();
  if (since < dwellMs) {
    const readyAt = new Date(current.placedAt.getTime() + dwellMs).toISOString();
    return decide(current.tier, `${why}, but the minimum dwell of ${s.min_dwell_hours}h in ${current.tier} ends at ${readyAt}`, band);
  }
  return decide(band, why);
}

export function isOverrideActive(p: CurrentPlacement, now: Date): boolean {
  return p.origin === 'operator' && p.overrideExpiresAt !== null && p.overrideExpiresAt > now;
}
