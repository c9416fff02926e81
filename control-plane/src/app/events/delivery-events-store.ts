/**
 * Writing delivery events: one INSERT … SELECT FROM unnest per batch, idempotent on source_id, then the
 * consequences of the rows that were new (and only those): rollups, suppressions, soft-bounce streaks.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Tx } from '../../adapters/pg/database.js';
import type { DeliveryEvent } from '../../domain/events/kumo-log-record.js';
import { rollup, SOFT_STREAK_LENGTH, SOFT_STREAK_RECORD_TYPE } from '../../domain/trust/rollup.js';
import { addDailyMetrics } from '../trust/daily-metrics.js';

export interface StoredEvent extends DeliveryEvent {
  nodeId: string | null;
}

export interface StoreResult {
  inserted: StoredEvent[];
  duplicates: number;
  promotedStreaks: number;
  suppressed: number;
}

async function insertEvents(tx: Tx, events: StoredEvent[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const col = <T>(f: (e: StoredEvent) => T) => events.map(f);
  const { rows } = await sql<{ source_id: string }>`
    INSERT INTO delivery_events (source_id, node_id, tenant_id, lane, record_type, outcome, message_id, sender, recipient,
      recipient_domain, egress_pool, egress_source, response_code, enhanced_code, response_text, bounce_classification, occurred_at, node_fault)
    SELECT * FROM unnest(
      ${col((e) => e.sourceId)}::text[], ${col((e) => e.nodeId)}::uuid[], ${col((e) => e.tenantId)}::uuid[], ${col((e) => e.lane)}::lane[],
      ${col((e) => e.recordType)}::text[], ${col((e) => e.classification.outcome)}::delivery_outcome[], ${col((e) => e.messageId)}::text[],
      ${col((e) => e.sender)}::text[], ${col((e) => e.recipient)}::text[], ${col((e) => e.recipientDomain)}::text[],
      ${col((e) => e.egressPool)}::text[], ${col((e) => e.egressSource)}::text[], ${col((e) => e.responseCode)}::int[],
      ${col((e) => e.enhancedCode)}::text[], ${col((e) => e.responseText)}::text[], ${col((e) => e.bounceClassification)}::text[],
      ${col((e) => e.occurredAt.toISOString())}::timestamptz[], ${col((e) => e.classification.nodeFault === true)}::boolean[])
    ON CONFLICT (source_id) DO NOTHING
    RETURNING source_id`.execute(tx);
  return new Set(rows.map((r) => r.source_id));
}

async function suppress(tx: Tx, entries: { tenantId: string; address: string; reason: 'hard_bounce' | 'complaint' }[]): Promise<number> {
  if (entries.length === 0) return 0;
  const { rows } = await sql<{ id: string }>`
    INSERT INTO suppressions (tenant_id, pattern, reason, note)
    SELECT t, p, r::suppression_reason, 'automatic' FROM unnest(${entries.map((e) => e.tenantId)}::uuid[], ${entries.map((e) => e.address)}::text[], ${entries.map((e) => e.reason)}::text[]) AS x(t, p, r)
    WHERE p ~ '^[^@[:space:]*]+@[a-z0-9.-]+$'
    ON CONFLICT (tenant_id, pattern) DO NOTHING
    RETURNING id`.execute(tx);
  return rows.length;
}

/**
 * Five soft bounces in a row to one recipient (nothing delivered or hard-bounced in between) count as
 * one hard bounce. The derived event's id names the streak's start, so it is written once however
 * often the streak is looked at.
 */
async function promoteSoftStreaks(tx: Tx, pairs: { tenantId: string; recipient: string }[]): Promise<StoredEvent[]> {
  if (pairs.length === 0) return [];
  const { rows } = await sql<{ tenant_id: string; recipient: string; reset_at: Date | null; last_soft: Date; lane: 'external' | 'warming' }>`
    WITH pairs AS (
      SELECT DISTINCT t AS tenant_id, r AS recipient FROM unnest(${pairs.map((p) => p.tenantId)}::uuid[], ${pairs.map((p) => p.recipient)}::text[]) AS x(t, r)
    ), resets AS (
      SELECT p.tenant_id, p.recipient,
        (SELECT max(e.occurred_at) FROM delivery_events e
          WHERE e.tenant_id = p.tenant_id AND e.recipient = p.recipient AND e.outcome IN ('delivered', 'hard_bounce')) AS reset_at
      FROM pairs p
    )
    SELECT r.tenant_id, r.recipient, r.reset_at, max(e.occurred_at) AS last_soft, min(e.lane::text)::lane AS lane
    FROM resets r
    JOIN delivery_events e ON e.tenant_id = r.tenant_id AND e.recipient = r.recipient AND e.outcome = 'soft_bounce'
      AND (r.reset_at IS NULL OR e.occurred_at > r.reset_at)
    GROUP BY r.tenant_id, r.recipient, r.reset_at
    HAVING count(*) >= ${SOFT_STREAK_LENGTH}`.execute(tx);
  return rows.map((r) => {
    const start = r.reset_at ? r.reset_at.toISOString() : 'start';
    return {
      sourceId: `streak:${createHash('sha256').update(`${r.tenant_id}|${r.recipient}|${start}`).digest('hex')}`,
      nodeId: null,
      recordType: SOFT_STREAK_RECORD_TYPE as never,
      classification: { outcome: 'hard_bounce', suppress: true, scored: true, reason: `${SOFT_STREAK_LENGTH} consecutive soft bounces` },
      tenantId: r.tenant_id,
      attributionDomain: null,
      lane: r.lane,
      messageId: null,
      sender: null,
      recipient: r.recipient,
      recipientDomain: r.recipient.slice(r.recipient.lastIndexOf('@') + 1),
      egressPool: null,
      egressSource: null,
      responseCode: null,
      enhancedCode: null,
      responseText: `${SOFT_STREAK_LENGTH} consecutive soft bounces since ${start}`,
      bounceClassification: null,
      occurredAt: r.last_soft,
      feedbackType: null,
    };
  });
}

async function applyConsequences(tx: Tx, inserted: StoredEvent[]): Promise<number> {
  await addDailyMetrics(
    tx,
    rollup(inserted.map((e) => ({ tenantId: e.tenantId, lane: e.lane, outcome: e.classification.outcome, scored: e.classification.scored, recordType: e.recordType, occurredAt: e.occurredAt }))),
  );
  const toSuppress = inserted
    .filter((e) => e.classification.suppress && e.tenantId && e.recipient)
    .map((e) => ({ tenantId: e.tenantId!, address: e.recipient!, reason: e.classification.outcome === 'complaint' ? ('complaint' as const) : ('hard_bounce' as const) }));
  return suppress(tx, toSuppress);
}

export async function storeDeliveryEvents(tx: Tx, events: StoredEvent[]): Promise<StoreResult> {
  const fresh = await insertEvents(tx, events);
  // a record repeated inside one batch is one event too
  const seen = new Set<string>();
  const inserted = events.filter((e) => fresh.has(e.sourceId) && !seen.has(e.sourceId) && seen.add(e.sourceId));
  let suppressed = await applyConsequences(tx, inserted);

  const streakPairs = inserted
    .filter((e) => e.tenantId && e.recipient && e.classification.outcome === 'soft_bounce')
    .map((e) => ({ tenantId: e.tenantId!, recipient: e.recipient! }));
  const candidates = await promoteSoftStreaks(tx, streakPairs);
  const promotedIds = await insertEvents(tx, candidates);
  const promoted = candidates.filter((e) => promotedIds.has(e.sourceId));
  suppressed += await applyConsequences(tx, promoted);

  return { inserted: [...inserted, ...promoted], duplicates: events.length - inserted.length, promotedStreaks: promoted.length, suppressed };
}
