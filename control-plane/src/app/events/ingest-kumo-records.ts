/**
 * POST /v1/events/kumo: a batch of KumoMTA log records from one node, as a list of named steps.
 *   1. parse every record (pure); a bad one gets a reason and its neighbours carry on
 *   2. attribute: tenant from meta; for returned reports, the tenant owning the original's domain
 *   3. in one transaction: store (idempotent), roll up, suppress, promote soft streaks, rescore
 */
import type { AppContext } from '../../context.js';
import { sql } from 'kysely';
import { inTransaction, type Tx } from '../../adapters/pg/database.js';
import { parseKumoRecord, type DeliveryEvent } from '../../domain/events/kumo-log-record.js';
import { rescoreTenants } from '../trust/rescore.js';
import { storeDeliveryEvents, type StoredEvent } from './delivery-events-store.js';

export const MAX_RECORDS_PER_BATCH = 10_000;

export interface IngestReport {
  received: number;
  accepted: number;
  duplicates: number;
  rejected: { index: number; reason: string }[];
  unattributed: number;
  suppressed: number;
  promoted_soft_streaks: number;
  tenants_rescored: number;
}

/** Domains that own returned reports: the sending domain itself or its `bounces.` return-path host. */
export async function tenantsByDomain(ctx: AppContext, domains: string[]): Promise<Map<string, string>> {
  const candidates = new Set<string>();
  for (const d of domains) {
    candidates.add(d);
    if (d.startsWith('bounces.')) candidates.add(d.slice('bounces.'.length));
  }
  if (candidates.size === 0) return new Map();
  const rows = await ctx.db.selectFrom('sending_domains').select(['domain', 'tenant_id']).where('domain', 'in', [...candidates]).execute();
  const owner = new Map(rows.map((r) => [r.domain, r.tenant_id]));
  const out = new Map<string, string>();
  for (const d of domains) {
    const t = owner.get(d) ?? (d.startsWith('bounces.') ? owner.get(d.slice('bounces.'.length)) : undefined);
    if (t) out.set(d, t);
  }
  return out;
}

/**
 * Ingest batches share these row locks, so they never wait for each other; the full rebuild takes
 * them exclusively, so rollups never move under it.
 */
export async function lockTenantsShared(tx: Tx, tenantIds: string[]): Promise<void> {
  const ids = [...new Set(tenantIds)].sort();
  if (ids.length > 0) await sql`SELECT 1 FROM tenants WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR SHARE`.execute(tx);
}

/** Tenant ids the records claim that really exist; the rest are treated as unattributed. */
async function existingTenants(ctx: AppContext, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await ctx.db.selectFrom('tenants').select('id').where('id', 'in', [...new Set(ids)]).execute();
  return new Set(rows.map((r) => r.id));
}

export async function ingestDeliveryEvents(ctx: AppContext, nodeId: string | null, parsed: DeliveryEvent[]): Promise<Omit<IngestReport, 'received' | 'rejected'>> {
  const byDomain = await tenantsByDomain(ctx, [...new Set(parsed.filter((e) => !e.tenantId && e.attributionDomain).map((e) => e.attributionDomain!))]);
  const known = await existingTenants(ctx, parsed.flatMap((e) => (e.tenantId ? [e.tenantId] : [])));
  const events: StoredEvent[] = parsed.map((e) => {
    const claimed = e.tenantId && known.has(e.tenantId) ? e.tenantId : null;
    return { ...e, tenantId: claimed ?? (e.attributionDomain ? (byDomain.get(e.attributionDomain) ?? null) : null), nodeId };
  });
  const now = ctx.now();
  return inTransaction(ctx.db, async (tx) => {
    await lockTenantsShared(tx, events.flatMap((e) => (e.tenantId ? [e.tenantId] : [])));
    const stored = await storeDeliveryEvents(tx, events);
    const touched = [...new Set(stored.inserted.filter((e) => e.tenantId && e.classification.scored).map((e) => e.tenantId!))];
    const rescored = await rescoreTenants(tx, touched, now);
    if (nodeId) await tx.updateTable('nodes').set({ last_seen_at: now }).where('id', '=', nodeId).execute();
    return {
      accepted: stored.inserted.length - stored.promotedStreaks,
      duplicates: stored.duplicates,
      unattributed: events.filter((e) => e.tenantId === null).length,
      suppressed: stored.suppressed,
      promoted_soft_streaks: stored.promotedStreaks,
      tenants_rescored: rescored.length,
    };
  });
}

export async function ingestKumoRecords(ctx: AppContext, node: { id: string }, records: unknown[]): Promise<IngestReport> {
  const rejected: IngestReport['rejected'] = [];
  const parsed: DeliveryEvent[] = [];
  records.forEach((raw, index) => {
    const r = parseKumoRecord(raw, node.id);
    if (r.ok) parsed.push(...r.events);
    else rejected.push({ index, reason: r.reason });
  });
  const result = await ingestDeliveryEvents(ctx, node.id, parsed);
  const m = ctx.metrics;
  m.eventsIngested.inc({ source: 'kumo', result: 'accepted' }, result.accepted);
  m.eventsIngested.inc({ source: 'kumo', result: 'duplicate' }, result.duplicates);
  m.eventsIngested.inc({ source: 'kumo', result: 'rejected' }, rejected.length);
  m.trustRecomputations.inc(result.tenants_rescored);
  const newest = parsed.reduce((t, e) => Math.max(t, e.occurredAt.getTime()), 0);
  if (newest > 0) m.noteNewestEvent(node.id, newest);
  if (rejected.length > 0) ctx.log.warn({ node: node.id, rejected: rejected.length, first: rejected[0] }, 'log records rejected');
  return { received: records.length, rejected, ...result };
}
