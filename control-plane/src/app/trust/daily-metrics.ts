/** Reading and adding to tenant_daily_metrics; one statement per batch, never a round trip per row. */
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { DailyMetrics, MetricCounts } from '../../domain/trust/rollup.js';
import type { Lane } from '../../domain/events/kumo-log-record.js';

const COUNTERS = ['sent', 'delivered', 'hard_bounces', 'soft_bounces', 'complaints', 'opens', 'clicks', 'replies'] as const;

/** Add rollup deltas (upsert, summing into existing rows). */
export async function addDailyMetrics(tx: Tx | Db, rows: DailyMetrics[]): Promise<void> {
  if (rows.length === 0) return;
  const col = <K extends keyof DailyMetrics>(k: K) => rows.map((r) => r[k]);
  await sql`
    INSERT INTO tenant_daily_metrics (tenant_id, day, lane, sent, delivered, hard_bounces, soft_bounces, complaints, opens, clicks, replies)
    SELECT * FROM unnest(
      ${col('tenantId')}::uuid[], ${col('day')}::date[], ${col('lane')}::lane[],
      ${col('sent')}::bigint[], ${col('delivered')}::bigint[], ${col('hard_bounces')}::bigint[], ${col('soft_bounces')}::bigint[],
      ${col('complaints')}::bigint[], ${col('opens')}::bigint[], ${col('clicks')}::bigint[], ${col('replies')}::bigint[])
    ON CONFLICT (tenant_id, day, lane) DO UPDATE SET
      sent = tenant_daily_metrics.sent + excluded.sent,
      delivered = tenant_daily_metrics.delivered + excluded.delivered,
      hard_bounces = tenant_daily_metrics.hard_bounces + excluded.hard_bounces,
      soft_bounces = tenant_daily_metrics.soft_bounces + excluded.soft_bounces,
      complaints = tenant_daily_metrics.complaints + excluded.complaints,
      opens = tenant_daily_metrics.opens + excluded.opens,
      clicks = tenant_daily_metrics.clicks + excluded.clicks,
      replies = tenant_daily_metrics.replies + excluded.replies`.execute(tx);
}

export type LaneCounts = Record<Lane, MetricCounts>;

const zero = (): MetricCounts => ({ sent: 0, delivered: 0, hard_bounces: 0, soft_bounces: 0, complaints: 0, opens: 0, clicks: 0, replies: 0 });

/** Window totals per tenant and lane, from `fromDay` (inclusive, UTC) on. */
export async function readWindowCounts(db: Db | Tx, tenantIds: string[], fromDay: string): Promise<Map<string, LaneCounts>> {
  const out = new Map<string, LaneCounts>(tenantIds.map((id) => [id, { external: zero(), warming: zero() }]));
  if (tenantIds.length === 0) return out;
  const rows = await db
    .selectFrom('tenant_daily_metrics')
    .select(['tenant_id', 'lane'])
    .select((eb) => COUNTERS.map((c) => eb.fn.sum<string>(c).as(c)))
    .where('tenant_id', 'in', tenantIds)
    .where('day', '>=', fromDay)
    .groupBy(['tenant_id', 'lane'])
    .execute();
  for (const r of rows) {
    const lanes = out.get(r.tenant_id)!;
    const target = lanes[r.lane];
    for (const c of COUNTERS) target[c] = Number((r as unknown as Record<string, string>)[c]);
  }
  return out;
}

/** Warming messages of the tenant delivered since `since`: its rehabilitation progress. */
export async function cleanWarmingSendsSince(db: Db | Tx, tenantId: string, since: Date): Promise<number> {
  const row = await db
    .selectFrom('delivery_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('lane', '=', 'warming')
    .where('outcome', '=', 'delivered')
    .where('occurred_at', '>=', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
