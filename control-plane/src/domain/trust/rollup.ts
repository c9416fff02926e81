/**
 * Daily per-tenant, per-lane metric rollups from delivery and engagement events. Pure and additive:
 * the rollup of a union of event sets is the sum of their rollups, which is what lets ingest add each
 * batch's delta while the batch job rebuilds from scratch and both land on the same numbers.
 */
import type { Lane, Outcome } from '../events/kumo-log-record.js';
import type { TrustCounts } from './components.js';

/** Record type of the hard bounce derived from a soft-bounce streak (not a message of its own). */
export const SOFT_STREAK_RECORD_TYPE = 'SoftBounceStreak';
/** Consecutive soft bounces to one recipient that count as one hard bounce. */
export const SOFT_STREAK_LENGTH = 5;

/** The counters of a rollup row, in the order of tenant_daily_metrics' columns. */
export const METRIC_COUNTERS = ['sent', 'delivered', 'hard_bounces', 'streak_bounces', 'expired', 'soft_bounces', 'complaints', 'opens', 'clicks', 'replies'] as const;

/**
 * One tenant's counts. sent = delivered + bounced messages + expired, where bounced messages are
 * hard_bounces - streak_bounces (a soft-bounce streak is a bounce about a recipient, not a message).
 */
export type MetricCounts = Record<(typeof METRIC_COUNTERS)[number], number>;

export interface DailyMetrics extends MetricCounts {
  tenantId: string;
  /** UTC date, YYYY-MM-DD */
  day: string;
  lane: Lane;
}

export interface RollupDeliveryInput {
  tenantId: string | null;
  lane: Lane;
  outcome: Outcome;
  scored: boolean;
  recordType: string;
  occurredAt: Date;
}

export interface RollupEngagementInput {
  tenantId: string;
  lane: Lane;
  kind: 'open' | 'click' | 'reply' | 'not_spam';
  occurredAt: Date;
}

export const zeroMetrics = (): MetricCounts => Object.fromEntries(METRIC_COUNTERS.map((k) => [k, 0])) as MetricCounts;

export const utcDay = (d: Date): string => d.toISOString().slice(0, 10);

/** How one delivery event moves the counters; null when it does not. */
export function deliveryDelta(e: RollupDeliveryInput): Partial<MetricCounts> | null {
  if (!e.scored || e.tenantId === null) return null;
  switch (e.outcome) {
    case 'delivered':
      return { sent: 1, delivered: 1 };
    case 'hard_bounce':
      // a streak-derived bounce is about a recipient, not one more message sent
      return e.recordType === SOFT_STREAK_RECORD_TYPE ? { hard_bounces: 1, streak_bounces: 1 } : { sent: 1, hard_bounces: 1 };
    case 'expired':
      return { sent: 1, expired: 1 };
    case 'soft_bounce':
      return { soft_bounces: 1 };
    case 'complaint':
      return { complaints: 1 };
    default:
      return null;
  }
}

export function engagementDelta(e: RollupEngagementInput): Partial<MetricCounts> | null {
  switch (e.kind) {
    case 'open':
      return { opens: 1 };
    case 'click':
      return { clicks: 1 };
    case 'reply':
      return { replies: 1 };
    default:
      return null;
  }
}

/** Sum events into rows keyed (tenant, day, lane), sorted for deterministic writes. */
export function rollup(deliveries: RollupDeliveryInput[], engagements: RollupEngagementInput[] = []): DailyMetrics[] {
  const rows = new Map<string, DailyMetrics>();
  const add = (tenantId: string, lane: Lane, at: Date, delta: Partial<MetricCounts>) => {
    const day = utcDay(at);
    const key = `${tenantId}|${day}|${lane}`;
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { tenantId, day, lane, ...zeroMetrics() }));
    for (const [k, v] of Object.entries(delta) as [keyof MetricCounts, number][]) row[k] += v;
  };
  for (const e of deliveries) {
    const d = deliveryDelta(e);
    if (d) add(e.tenantId!, e.lane, e.occurredAt, d);
  }
  for (const e of engagements) {
    const d = engagementDelta(e);
    if (d) add(e.tenantId, e.lane, e.occurredAt, d);
  }
  return [...rows.values()].sort((a, b) => (a.tenantId + a.day + a.lane < b.tenantId + b.day + b.lane ? -1 : 1));
}

/** Window totals from rollup rows, as the score wants them. */
export function toTrustCounts(rows: MetricCounts[]): TrustCounts {
  const t = zeroMetrics();
  for (const r of rows) for (const k of METRIC_COUNTERS) t[k] += Number(r[k]);
  return {
    sent: t.sent,
    delivered: t.delivered,
    hardBounces: t.hard_bounces,
    streakBounces: t.streak_bounces,
    expired: t.expired,
    softBounces: t.soft_bounces,
    complaints: t.complaints,
    opens: t.opens,
    clicks: t.clicks,
    replies: t.replies,
  };
}
