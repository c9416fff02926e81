/** The fleet as the pools logic sees it: every pooled IP with its node, pool and tier. */
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { Tier } from '../../domain/pools/placement.js';
import { bareAddress, egressSourceName } from '../../domain/fleet/naming.js';
import type { PlanIp, SourceTenantCounts } from '../../domain/pools/placement-plan.js';

/** An IP in a pool, with its node and tier (the placement plan's input). */
export type PooledIp = PlanIp;

export async function loadPooledIps(db: Db | Tx): Promise<PooledIp[]> {
  const rows = await db
    .selectFrom('ip_pool_members as m')
    .innerJoin('ip_addresses as ip', 'ip.id', 'm.ip_id')
    .innerJoin('ip_pools as p', 'p.id', 'm.pool_id')
    .innerJoin('nodes as n', 'n.id', 'ip.node_id')
    .select(['ip.id as ipId', 'ip.address', 'ip.state', 'n.id as nodeId', 'n.name as nodeName', 'p.id as poolId', 'p.name as poolName', 'p.tier', 'm.weight'])
    .orderBy('ip.address')
    .execute();
  return rows.map((r) => {
    const address = bareAddress(r.address);
    return { ...r, address, sourceName: egressSourceName(address) };
  });
}

export type { SourceTenantCounts } from '../../domain/pools/placement-plan.js';

/**
 * Sends, hard bounces and complaints per (egress source, tenant) in a window. Returned bounces and
 * complaints (OOB, Feedback) carry no egress source: they are traced to the IP through the delivery
 * of the same message.
 */
export async function sourceCounts(db: Db | Tx, sources: string[], from: Date, to: Date): Promise<SourceTenantCounts[]> {
  if (sources.length === 0) return [];
  const { rows } = await sql<{ source: string; tenant_id: string | null; sends: string; bounces: string; complaints: string }>`
    WITH w AS (
      SELECT e.tenant_id, e.outcome, e.record_type,
        COALESCE(e.egress_source, (
          SELECT d.egress_source FROM delivery_events d
          WHERE e.message_id IS NOT NULL AND d.message_id = e.message_id AND d.tenant_id IS NOT DISTINCT FROM e.tenant_id
            AND d.egress_source IS NOT NULL AND d.outcome = 'delivered'
          LIMIT 1)) AS source
      FROM delivery_events e
      WHERE e.occurred_at >= ${from} AND e.occurred_at < ${to}
        AND e.outcome IN ('delivered', 'expired', 'hard_bounce', 'complaint')
    )
    SELECT source, tenant_id,
      count(*) FILTER (WHERE outcome IN ('delivered', 'expired') OR (outcome = 'hard_bounce' AND record_type <> 'SoftBounceStreak')) AS sends,
      count(*) FILTER (WHERE outcome = 'hard_bounce') AS bounces,
      count(*) FILTER (WHERE outcome = 'complaint') AS complaints
    FROM w WHERE source = ANY(${sources}::text[])
    GROUP BY source, tenant_id`.execute(db);
  return rows.map((r) => ({ source: r.source, tenantId: r.tenant_id, sends: Number(r.sends), bounces: Number(r.bounces), complaints: Number(r.complaints) }));
}
