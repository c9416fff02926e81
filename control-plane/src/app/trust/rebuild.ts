/**
 * The full batch recomputation: rollups rebuilt from the stored events with the same pure rollup
 * function ingest uses, then every score recomputed. Ingest's incremental path must land on exactly
 * these numbers (a property test replays random batches both ways).
 */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction, type Tx } from '../../adapters/pg/database.js';
import { rollup, type RollupDeliveryInput, type RollupEngagementInput } from '../../domain/trust/rollup.js';
import { isScoredOutcome, type Lane, type Outcome } from '../../domain/events/kumo-log-record.js';
import { addDailyMetrics } from './daily-metrics.js';
import { rescoreTenants } from './rescore.js';

const CHUNK = 10_000;

async function deliveryInputs(tx: Tx, tenantIds: string[]): Promise<RollupDeliveryInput[]> {
  const out: RollupDeliveryInput[] = [];
  let after = '0';
  for (;;) {
    const rows = await tx
      .selectFrom('delivery_events')
      .select(['id', 'tenant_id', 'lane', 'record_type', 'outcome', 'occurred_at'])
      .where('tenant_id', 'in', tenantIds)
      .where('id', '>', after)
      .orderBy('id')
      .limit(CHUNK)
      .execute();
    for (const r of rows) {
      const outcome = r.outcome as Outcome;
      out.push({ tenantId: r.tenant_id, lane: r.lane as Lane, outcome, scored: isScoredOutcome(outcome), recordType: r.record_type, occurredAt: r.occurred_at });
    }
    if (rows.length < CHUNK) return out;
    after = rows[rows.length - 1]!.id;
  }
}

async function engagementInputs(tx: Tx, tenantIds: string[]): Promise<RollupEngagementInput[]> {
  const rows = await tx.selectFrom('engagement_events').select(['tenant_id', 'lane', 'kind', 'occurred_at']).where('tenant_id', 'in', tenantIds).execute();
  return rows.map((r) => ({ tenantId: r.tenant_id, lane: r.lane as Lane, kind: r.kind, occurredAt: r.occurred_at }));
}

export async function rebuildTrust(ctx: AppContext, batchSize = 200): Promise<{ tenants: number; rows: number }> {
  const now = ctx.now();
  let after = '00000000-0000-0000-0000-000000000000';
  let tenants = 0;
  let rowsWritten = 0;
  for (;;) {
    const ids = (await ctx.db.selectFrom('tenants').select('id').where('id', '>', after).orderBy('id').limit(batchSize).execute()).map((r) => r.id);
    if (ids.length === 0) return { tenants, rows: rowsWritten };
    await inTransaction(ctx.db, async (tx) => {
      // serialise with ingest for these tenants: rollups must not move while they are rebuilt
      await sql`SELECT 1 FROM tenants WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR UPDATE`.execute(tx);
      await tx.deleteFrom('tenant_daily_metrics').where('tenant_id', 'in', ids).execute();
      const rows = rollup(await deliveryInputs(tx, ids), await engagementInputs(tx, ids));
      await addDailyMetrics(tx, rows);
      await rescoreTenants(tx, ids, now);
      rowsWritten += rows.length;
    });
    tenants += ids.length;
    after = ids[ids.length - 1]!;
  }
}
