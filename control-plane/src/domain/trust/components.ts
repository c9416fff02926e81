/**
 * The terms of the Platform Trust Score, one row each: what is counted, out of what, which way it
 * moves the score and by how much, and the settings that carry its weight, its prior (engagement a
 * tenant may not report) or its target (penalties a locked tenant must bring down). The score, its
 * bounds, the rehabilitation arithmetic and the settings schema are all derived from this table, so a
 * new term is one row. Pure.
 */

/** Window totals for one tenant and lane. */
export interface TrustCounts {
  /** messages with a final outcome: sent = delivered + bounced messages + expired */
  sent: number;
  delivered: number;
  /** bounces counted in the score: bounced messages plus soft-bounce streaks (5 in a row to one address) */
  hardBounces: number;
  /** the part of hardBounces that came from soft-bounce streaks (not messages of their own) */
  streakBounces: number;
  expired: number;
  softBounces: number;
  complaints: number;
  opens: number;
  clicks: number;
  replies: number;
}

export const ZERO_COUNTS: TrustCounts = { sent: 0, delivered: 0, hardBounces: 0, streakBounces: 0, expired: 0, softBounces: 0, complaints: 0, opens: 0, clicks: 0, replies: 0 };

export interface TrustComponent {
  key: string;
  /** the counted event */
  count: keyof TrustCounts;
  /** what the rate is out of */
  denominator: 'sent' | 'delivered';
  /** +1: more of it raises the score; -1: lowers it */
  direction: 1 | -1;
  /** `points` per `perPct` percent of the rate, an operator setting */
  weight: { setting: string; points: number; max: number; perPct: number };
  /** engagement a tenant reports or not: when it does not, the external lane's rate is assumed to be this */
  prior?: { setting: string; pct: number };
  /** a penalty's rate that rehabilitation aims for */
  target?: { setting: string; pct: number };
}

export const TRUST_COMPONENTS = [
  {
    key: 'replies',
    count: 'replies',
    denominator: 'delivered',
    direction: 1,
    weight: { setting: 'reply_points_per_pct', points: 1.5, max: 100, perPct: 1 },
    // typical of warm-up engagement (15-30% replies during warm-up, 0-7% positive in production)
    prior: { setting: 'reply_prior_pct', pct: 12 },
  },
  {
    key: 'opens',
    count: 'opens',
    denominator: 'delivered',
    direction: 1,
    weight: { setting: 'open_points_per_pct', points: 0.2, max: 100, perPct: 1 },
    prior: { setting: 'open_prior_pct', pct: 50 },
  },
  {
    key: 'bounces',
    count: 'hardBounces',
    denominator: 'sent',
    direction: -1,
    weight: { setting: 'bounce_points_per_pct', points: 10, max: 1000, perPct: 1 },
    target: { setting: 'bounce_target_pct', pct: 1 },
  },
  {
    key: 'complaints',
    count: 'complaints',
    denominator: 'sent',
    direction: -1,
    weight: { setting: 'complaint_points_per_tenth_pct', points: 100, max: 10000, perPct: 0.1 },
    target: { setting: 'complaint_target_pct', pct: 0.1 },
  },
] as const satisfies readonly TrustComponent[];

type Row = (typeof TRUST_COMPONENTS)[number];
export type ComponentKey = Row['key'];
export type WeightSetting = Row['weight']['setting'];
export type PriorSetting = Extract<Row, { prior: unknown }>['prior']['setting'];
export type TargetSetting = Extract<Row, { target: unknown }>['target']['setting'];
/** The engagement terms: those a tenant may declare it reports. */
export type EngagementKey = Extract<Row, { prior: unknown }>['key'];
export type PenaltyKey = Extract<Row, { target: unknown }>['key'];

export const ENGAGEMENT_KEYS = TRUST_COMPONENTS.filter((c): c is Extract<Row, { prior: unknown }> => 'prior' in c).map((c) => c.key) as EngagementKey[];
export const PENALTY_KEYS = TRUST_COMPONENTS.filter((c): c is Extract<Row, { target: unknown }> => 'target' in c).map((c) => c.key) as PenaltyKey[];

/** The settings the table defines, with their defaults: weights, priors and targets. */
export type ComponentSettings = Record<WeightSetting | PriorSetting | TargetSetting, number>;

export const COMPONENT_SETTING_DEFAULTS = Object.fromEntries(
  TRUST_COMPONENTS.flatMap((c: TrustComponent) => [
    [c.weight.setting, c.weight.points] as const,
    ...(c.prior ? [[c.prior.setting, c.prior.pct] as const] : []),
    ...(c.target ? [[c.target.setting, c.target.pct] as const] : []),
  ]),
) as ComponentSettings;
