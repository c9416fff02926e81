/**
 * Operator-owned settings, one section per row of the `settings` table. The defaults are the product's
 * published numbers (the trust formula, Hetzner prices, public ESP warm-up practice); operators change
 * them through the API and every change is audited. Each section is validated as a whole, including
 * rules that tie fields together (an unlock threshold below the lock threshold would make tenants flap).
 */
import { z } from 'zod';
import { COMPONENT_SETTING_DEFAULTS, TRUST_COMPONENTS, type ComponentSettings, type TrustComponent } from '../trust/components.js';

const pct = z.number().min(0).max(100);
const providerCaps = z.strictObject({
  gmail: z.number().int().min(1),
  microsoft: z.number().int().min(1),
  yahoo: z.number().int().min(1),
  other: z.number().int().min(1),
});

/** Each term's weight, prior (engagement) and target (penalties), from the one table of terms. */
const trustComponentShape = Object.fromEntries(
  (TRUST_COMPONENTS as readonly TrustComponent[]).flatMap((c) => [
    [c.weight.setting, z.number().min(0).max(c.weight.max)] as const,
    ...(c.prior ? [[c.prior.setting, pct] as const] : []),
    ...(c.target ? [[c.target.setting, z.number().gt(0).max(100)] as const] : []),
  ]),
) as Record<keyof ComponentSettings, z.ZodNumber>;

export const trustSettingsShape = {
  /** points for a domain with SPF, DKIM and DMARC verified; 0 otherwise */
  base_authenticated: z.number().min(0).max(100),
  ...trustComponentShape,
  lock_below: pct,
  unlock_at_or_above: pct,
  window_days: z.number().int().min(1).max(365),
  min_sample: z.number().int().min(1).max(1_000_000),
  confidence: z.number().gt(0.5).lt(1),
};

export const trustSettingsSchema = z
  .strictObject(trustSettingsShape)
  .refine((s) => s.unlock_at_or_above > s.lock_below, {
    message: 'unlock_at_or_above must be greater than lock_below (hysteresis)',
    path: ['unlock_at_or_above'],
  });

export const placementSettingsShape = {
  premium_min_score: pct,
  standard_min_score: pct,
  hysteresis_points: z.number().min(0).max(50),
  min_dwell_hours: z.number().int().min(0).max(24 * 90),
  max_node_share_pct: z.number().gt(0).max(100),
  bounce_review_pct: pct,
  bounce_pause_pct: pct,
  complaint_review_pct: pct,
  complaint_pause_pct: pct,
  reputation_min_sample: z.number().int().min(1),
  /** IPs in a tenant's shard within its tier */
  shard_size: z.number().int().min(1).max(8),
  /** a tenant is a bad apple when its share of a pool's bad events is this many times its share of volume */
  bad_apple_lift: z.number().min(1).max(100),
  bad_apple_min_events: z.number().int().min(1),
  detection_window_hours: z.number().int().min(1).max(24 * 14),
  quarantine_hours: z.number().int().min(1).max(24 * 90),
  /** external messages per hour a tenant may send, by tier (a Redis throttle shared by all nodes) */
  premium_external_per_hour: z.number().int().min(1).max(10_000_000),
  standard_external_per_hour: z.number().int().min(1).max(10_000_000),
};

export const placementSettingsSchema = z
  .strictObject(placementSettingsShape)
  .refine((s) => s.premium_min_score > s.standard_min_score, {
    message: 'premium_min_score must be greater than standard_min_score',
    path: ['premium_min_score'],
  })
  .refine((s) => s.bounce_pause_pct >= s.bounce_review_pct && s.complaint_pause_pct >= s.complaint_review_pct, {
    message: 'pause thresholds must be at or above review thresholds',
    path: ['bounce_pause_pct'],
  })
  // the public guidance (5%/10% bounces, 0.1%/0.3% complaints) is the floor of strictness
  .refine((s) => s.bounce_review_pct <= 5 && s.bounce_pause_pct <= 10 && s.complaint_review_pct <= 0.1 && s.complaint_pause_pct <= 0.3, {
    message: 'thresholds may be stricter than the public ones (bounces 5%/10%, complaints 0.1%/0.3%), not looser',
    path: ['bounce_review_pct'],
  });

export const costSettingsShape = {
  ip_monthly_usd: z.number().min(0).max(100000),
  vps_monthly_usd: z.number().min(0).max(100000),
  golden_seed_monthly_usd: z.number().min(0).max(100000),
};

export const costSettingsSchema = z.strictObject(costSettingsShape);

export const ipWarmupSettingsShape = {
  start_per_day: providerCaps,
  growth_factor: z.number().gt(1).max(3),
  max_per_day: providerCaps,
  idle_rewarm_days: z.number().int().min(1).max(365),
  /** share of the day's total cap that must actually have been sent before the next day's caps apply */
  advance_min_fill_pct: z.number().min(1).max(100),
  clean_bounce_pct: z.number().min(0).max(100),
  clean_complaint_pct: z.number().min(0).max(100),
  /** days a quarantined (damaged) IP rests before it starts warming again */
  rest_days: z.number().int().min(1).max(365),
};

export const ipWarmupSettingsSchema = z.strictObject(ipWarmupSettingsShape);

export const mailboxWarmupSettingsShape = {
  new_start_per_day: z.number().int().min(1).max(1000),
  prewarmed_start_per_day: z.number().int().min(1).max(1000),
  daily_increment: z.number().int().min(0).max(1000),
  first_two_weeks_cap: z.number().int().min(1).max(1000),
  max_per_day: z.number().int().min(1).max(10000),
  degrade_cut_pct: z.number().min(1).max(100),
};

export const mailboxWarmupSettingsSchema = z
  .strictObject(mailboxWarmupSettingsShape)
  .refine((s) => s.first_two_weeks_cap <= s.max_per_day, {
    message: 'first_two_weeks_cap must not exceed max_per_day',
    path: ['first_two_weeks_cap'],
  });

export const warmingNetworkSettingsShape = {
  /** warming messages one golden seed receives per day at most */
  seed_daily_capacity: z.number().int().min(0).max(10000),
  /** share of a clean mailbox's daily volume sent to golden seeds, as capacity lasts */
  seed_share_pct: z.number().min(0).max(100),
  /** chance that a peer answers a warming message it received the day before */
  reply_pct: z.number().min(0).max(100),
  /** the sending window, UTC hours [start, end) */
  window_start_hour: z.number().int().min(0).max(23),
  window_end_hour: z.number().int().min(1).max(24),
  /** a pair used within this many days is avoided while other partners remain */
  pair_cooldown_days: z.number().int().min(0).max(365),
  /** a member whose warming sends bounce above this share (last 7 days) is isolated */
  risky_bounce_pct: z.number().min(0).max(100),
  /** a member of a tenant scoring below this is isolated */
  risky_score_below: z.number().min(0).max(100),
  /** a mailbox whose warming bounces exceed this share (last 3 days) has its volume cut by degrade_cut_pct */
  degrade_bounce_pct: z.number().min(0).max(100),
  /** days a mailbox pauses after a complaint */
  complaint_pause_days: z.number().int().min(0).max(365),
};

export const warmingNetworkSettingsSchema = z
  .strictObject(warmingNetworkSettingsShape)
  .refine((s) => s.window_end_hour > s.window_start_hour, { message: 'window_end_hour must be after window_start_hour', path: ['window_end_hour'] });

export const policyRolloutSettingsShape = {
  /** a change waits this long for more changes before it goes out, so a burst is one rollout */
  debounce_seconds: z.number().int().min(0).max(3600),
  /** but never longer than this after the fleet first differed from what it runs */
  max_delay_seconds: z.number().int().min(0).max(86_400),
  /** an urgent change (a lock, a quarantine, an IP that stops carrying mail) goes out within this, to every node at once */
  urgent_delay_seconds: z.number().int().min(0).max(3600),
  /** nodes that get a change first (nodes marked canary, else the first by name among those it changes) */
  canary_count: z.number().int().min(1).max(100),
  /** a node that has not reported running its new version within this is a failed apply */
  apply_timeout_seconds: z.number().int().min(10).max(86_400),
  /** how long the canaries run the new version, watched, before the rest of the fleet gets it */
  soak_seconds: z.number().int().min(0).max(7 * 86_400),
  /** the canaries' own rates over this many hours before the rollout are the baseline */
  baseline_hours: z.number().int().min(1).max(24 * 30),
  /** delivery records the canaries need in the soak for their rates to be judged */
  min_records: z.number().int().min(0).max(1_000_000),
  /** percentage points the canaries' hard-bounce, deferral and error rates may rise over their baseline */
  max_bounce_increase_pts: pct,
  max_deferral_increase_pts: pct,
  max_error_increase_pts: pct,
};

export const policyRolloutSettingsSchema = z
  .strictObject(policyRolloutSettingsShape)
  .refine((s) => s.max_delay_seconds >= s.debounce_seconds, { message: 'max_delay_seconds must be at least debounce_seconds', path: ['max_delay_seconds'] });

export const SETTINGS_SCHEMAS = {
  trust: trustSettingsSchema,
  placement: placementSettingsSchema,
  costs: costSettingsSchema,
  ip_warmup: ipWarmupSettingsSchema,
  mailbox_warmup: mailboxWarmupSettingsSchema,
  warming_network: warmingNetworkSettingsSchema,
  policy_rollout: policyRolloutSettingsSchema,
} as const;

/** The fields of each section without the cross-field rules: what a PATCH body may contain. */
export const SETTINGS_SHAPES = {
  trust: trustSettingsShape,
  placement: placementSettingsShape,
  costs: costSettingsShape,
  ip_warmup: ipWarmupSettingsShape,
  mailbox_warmup: mailboxWarmupSettingsShape,
  warming_network: warmingNetworkSettingsShape,
  policy_rollout: policyRolloutSettingsShape,
} as const;

export type SettingsSection = keyof typeof SETTINGS_SCHEMAS;
export const SETTINGS_SECTIONS = Object.keys(SETTINGS_SCHEMAS) as SettingsSection[];

export interface Settings {
  trust: z.infer<typeof trustSettingsSchema>;
  placement: z.infer<typeof placementSettingsSchema>;
  costs: z.infer<typeof costSettingsSchema>;
  ip_warmup: z.infer<typeof ipWarmupSettingsSchema>;
  mailbox_warmup: z.infer<typeof mailboxWarmupSettingsSchema>;
  warming_network: z.infer<typeof warmingNetworkSettingsSchema>;
  policy_rollout: z.infer<typeof policyRolloutSettingsSchema>;
}

export const DEFAULT_SETTINGS: Settings = {
  trust: {
    base_authenticated: 50,
    ...COMPONENT_SETTING_DEFAULTS,
    lock_below: 70,
    unlock_at_or_above: 75,
    window_days: 30,
    min_sample: 100,
    confidence: 0.95,
  },
  placement: {
    premium_min_score: 90,
    standard_min_score: 70,
    hysteresis_points: 3,
    min_dwell_hours: 72,
    max_node_share_pct: 25,
    bounce_review_pct: 5,
    bounce_pause_pct: 10,
    complaint_review_pct: 0.1,
    complaint_pause_pct: 0.3,
    reputation_min_sample: 500,
    shard_size: 2,
    bad_apple_lift: 2,
    bad_apple_min_events: 10,
    detection_window_hours: 24,
    quarantine_hours: 72,
    premium_external_per_hour: 20000,
    standard_external_per_hour: 5000,
  },
  costs: { ip_monthly_usd: 4.99, vps_monthly_usd: 9.99, golden_seed_monthly_usd: 4 },
  ip_warmup: {
    // a conservative reading of the public ramps: small start, about x1.4 a day, per mailbox provider
    start_per_day: { gmail: 50, microsoft: 50, yahoo: 50, other: 100 },
    growth_factor: 1.4,
    max_per_day: { gmail: 100000, microsoft: 100000, yahoo: 50000, other: 200000 },
    idle_rewarm_days: 30,
    advance_min_fill_pct: 90,
    clean_bounce_pct: 2,
    clean_complaint_pct: 0.1,
    rest_days: 14,
  },
  mailbox_warmup: {
    new_start_per_day: 25,
    prewarmed_start_per_day: 5,
    daily_increment: 2,
    first_two_weeks_cap: 50,
    max_per_day: 200,
    degrade_cut_pct: 40,
  },
  warming_network: {
    seed_daily_capacity: 40,
    seed_share_pct: 20,
    reply_pct: 30,
    window_start_hour: 7,
    window_end_hour: 21,
    pair_cooldown_days: 14,
    risky_bounce_pct: 3,
    risky_score_below: 50,
    degrade_bounce_pct: 2,
    complaint_pause_days: 7,
  },
  policy_rollout: {
    debounce_seconds: 30,
    max_delay_seconds: 300,
    urgent_delay_seconds: 5,
    canary_count: 1,
    apply_timeout_seconds: 300,
    soak_seconds: 600,
    baseline_hours: 24,
    min_records: 50,
    max_bounce_increase_pts: 2,
    max_deferral_increase_pts: 10,
    max_error_increase_pts: 1,
  },
};

/** Stored values over the defaults; a stored section that no longer validates falls back whole. */
export function effectiveSettings(stored: Partial<Record<SettingsSection, unknown>>): Settings {
  const out = structuredClone(DEFAULT_SETTINGS) as unknown as Record<SettingsSection, unknown>;
  for (const section of SETTINGS_SECTIONS) {
    const value = stored[section];
    if (value === undefined) continue;
    const merged = { ...(DEFAULT_SETTINGS[section] as object), ...(value as object) };
    const parsed = SETTINGS_SCHEMAS[section].safeParse(merged);
    if (parsed.success) out[section] = parsed.data;
  }
  return out as unknown as Settings;
}
