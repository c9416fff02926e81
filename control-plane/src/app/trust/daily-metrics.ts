/** Reading and adding to tenant_daily_metrics; one statement per batch, never a round trip per row. */
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import { METRIC_COUNTERS, zeroMetrics, type DailyMetrics, type MetricCounts } from '../../domain/trust/rollup.js';
import type { Lane } from '../../domain/events/kumo-log-record.js';

/** Add rollup deltas (upsert, summing into existing rows). */
export async function addDailyMetrics(tx: Tx | Db, rows: DailyMetrics[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = sql.join(METRIC_COUNTERS.map((c) => sql.ref(c)));
  const arrays = sql.join(METRIC_COUNTERS.map((c) => sql`${rows.map((r) => r[c])}::bigint[]`));
  const sums = sql.join(METRIC_COUNTERS.map((c) => sql`${sql.ref(c)} = tenant_daily_metrics.${sql.ref(c)} + excluded.${sql.ref(c)}`));
  await sql`
    INSERT INTO tenant_daily_metrics (tenant_id, day, lane, ${columns})
    SELECT * FROM unnest(${rows.map((r) => r.tenantId)}::uuid[], ${rows.map((r) => r.day)}::date[], ${rows.map((r) => r.lane)}::lane[], ${arrays})
    ON CONFLICT (tenant_id, day, lane) DO UPDATE SET ${sums}`.execute(tx);
}

export type LaneCounts = Record<Lane, MetricCounts>;

/** Window totals per tenant and lane, from `fromDay` (inclusive, UTC) on. */
export async function readWindowCounts(db: Db | Tx, tenantIds: string[], fromDay: string): Promise<Map<string, LaneCounts>> {
  const out = new Map<string, LaneCounts>(tenantIds.map((id) => [id, { external: zeroMetrics(), warming: zeroMetrics() }]));
  if (tenantIds.length === 0) return out;
  const rows = await db
    .selectFrom('tenant_daily_metrics')
    .select(['tenant_id', 'lane'])
    .select((eb) => METRIC_COUNTERS.map((c) => eb.fn.sum<string>(c).as(c)))
    .where('tenant_id', 'in', tenantIds)
    .where('day', '>=', fromDay)
    .groupBy(['tenant_id', 'lane'])
    .execute();
  for (const r of rows) {
    const lanes = out.get(r.tenant_id)!;
    const target = lanes[r.lane];
    for (const c of METRIC_COUNTERS) target[c] = Number((r as unknown as Record<string, string>)[c]);
  }
  return out;
}

/**
 * The whole network's warming lane over the window, summed: how warming mail engages. Read through
 * warming_network_counts (migration 0011), the one aggregate of every tenant's rows a tenant's scope
 * may see, since a locked tenant's trust view is estimated with it.
 */
export async function networkWarmingCounts(db: Db | Tx, fromDay: string): Promise<MetricCounts> {
  const { rows } = await sql<Record<string, string>>`SELECT * FROM warming_network_counts(${fromDay}::date)`.execute(db);
  const out = zeroMetrics();
  for (const c of METRIC_COUNTERS) out[c] = Number(rows[0]?.[c] ?? 0);
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
