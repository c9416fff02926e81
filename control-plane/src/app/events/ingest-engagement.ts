/** Opens, clicks, replies and not-spam marks: idempotent by (tenant, id), rolled up, rescored. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import { rollup } from '../../domain/trust/rollup.js';
import { addDailyMetrics } from '../trust/daily-metrics.js';
import { rescoreTenants } from '../trust/rescore.js';
import { lockTenantsShared } from './ingest-kumo-records.js';

export interface EngagementInput {
  id: string;
  tenant_id: string;
  kind: 'open' | 'click' | 'reply' | 'not_spam';
  occurred_at: string;
  lane?: 'external' | 'warming' | undefined;
  message_id?: string | undefined;
  recipient?: string | undefined;
  weight?: number | undefined;
}

export interface EngagementReport {
  received: number;
  accepted: number;
  duplicates: number;
  rejected: { index: number; reason: string }[];
  tenants_rescored: number;
}

export async function ingestEngagement(ctx: AppContext, events: EngagementInput[]): Promise<EngagementReport> {
  const tenants = new Set(
    (await ctx.db.selectFrom('tenants').select('id').where('id', 'in', [...new Set(events.map((e) => e.tenant_id))].concat(['00000000-0000-0000-0000-000000000000'])).execute()).map((r) => r.id),
  );
  const rejected: EngagementReport['rejected'] = [];
  const valid = events.filter((e, index) => {
    if (!tenants.has(e.tenant_id)) {
      rejected.push({ index, reason: `tenant ${e.tenant_id} does not exist` });
      return false;
    }
    return true;
  });
  const now = ctx.now();
  return inTransaction(ctx.db, async (tx) => {
    await lockTenantsShared(tx, valid.map((e) => e.tenant_id));
    let inserted: EngagementInput[] = [];
    if (valid.length > 0) {
      // the client's id is unique per tenant, not globally: scope it
      const sourceId = (e: EngagementInput) => `eng:${e.tenant_id}:${e.id}`;
      const { rows } = await sql<{ source_id: string }>`
        INSERT INTO engagement_events (source_id, tenant_id, lane, kind, message_id, recipient, weight, occurred_at)
        SELECT * FROM unnest(${valid.map(sourceId)}::text[], ${valid.map((e) => e.tenant_id)}::uuid[], ${valid.map((e) => e.lane ?? 'external')}::lane[],
          ${valid.map((e) => e.kind)}::engagement_kind[], ${valid.map((e) => e.message_id ?? null)}::text[], ${valid.map((e) => e.recipient?.toLowerCase() ?? null)}::text[],
          ${valid.map((e) => e.weight ?? 1)}::numeric[], ${valid.map((e) => e.occurred_at)}::timestamptz[])
        ON CONFLICT (source_id) DO NOTHING
        RETURNING source_id`.execute(tx);
      const fresh = new Set(rows.map((r) => r.source_id));
      const seen = new Set<string>();
      inserted = valid.filter((e) => fresh.has(sourceId(e)) && !seen.has(sourceId(e)) && seen.add(sourceId(e)));
    }
    await addDailyMetrics(tx, rollup([], inserted.map((e) => ({ tenantId: e.tenant_id, lane: e.lane ?? 'external', kind: e.kind, occurredAt: new Date(e.occurred_at) }))));
    const rescored = await rescoreTenants(tx, [...new Set(inserted.filter((e) => e.kind !== 'not_spam').map((e) => e.tenant_id))], now);
    ctx.metrics.eventsIngested.inc({ source: 'engagement', result: 'accepted' }, inserted.length);
    ctx.metrics.eventsIngested.inc({ source: 'engagement', result: 'duplicate' }, valid.length - inserted.length);
    ctx.metrics.eventsIngested.inc({ source: 'engagement', result: 'rejected' }, rejected.length);
    ctx.metrics.trustRecomputations.inc(rescored.length);
    return { received: events.length, accepted: inserted.length, duplicates: valid.length - inserted.length, rejected, tenants_rescored: rescored.length };
  });
}
