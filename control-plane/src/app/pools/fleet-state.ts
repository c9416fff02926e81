/** The fleet as the pools logic sees it: every pooled IP with its node, pool and tier. */
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { Tier } from '../../domain/pools/placement.js';
import { bareAddress, egressSourceName } from '../../domain/fleet/naming.js';
import type { PlanIp, SourceTenantCounts } from '../../domain/pools/placement-plan.js';
import type { MailReadiness } from '../../domain/fleet/ip-lifecycle.js';
import { mayCarryExternalMail, type Port25Egress } from '../../domain/provisioning/egress.js';

/** An IP in a pool, with its node and tier (the placement plan's input). */
export type PooledIp = PlanIp;

/** The columns readinessOf needs, as selected by the loaders below. */
export interface ReadinessFacts {
  ipProviderId: string | null;
  rdnsVerifiedAt: Date | null;
  nodeProjectId: string | null;
  projectEgress: Port25Egress | null;
  probeOk: boolean | null;
  probeAt: Date | null;
}

/**
 * What keeps a provisioned IP from carrying mail (domain/fleet/ip-lifecycle.ts ipCarriesMail): its
 * forward-confirmed reverse DNS, and its node's port-25 egress. Null for an IP on a hand-registered
 * node that was itself registered by hand (the operator's word stands).
 */
export function readinessOf(f: ReadinessFacts, now: Date): MailReadiness | null {
  if (f.ipProviderId === null && f.nodeProjectId === null) return null;
  const egress =
    f.nodeProjectId === null
      ? { allowed: true as const }
      : mayCarryExternalMail({
          projectEgress: f.projectEgress ?? 'blocked',
          lastProbe: f.probeAt === null || f.probeOk === null ? null : { connected: f.probeOk, atMs: f.probeAt.getTime() },
          nowMs: now.getTime(),
          // a probe's verdict stands until the next one: a failed probe stops the node at once, and a
          // node whose probes stopped arriving (timer broken, control plane unreachable) keeps its last
          // verdict rather than the fleet falling out of placement while the control plane is the
          // part that is down; the node view shows each probe's age (port25_probe.at)
          probeMaxAgeMs: Number.POSITIVE_INFINITY,
        });
  return { rdnsVerified: f.ipProviderId === null || f.rdnsVerifiedAt !== null, externalEgress: egress.allowed };
}

export async function loadPooledIps(db: Db | Tx, now: Date = new Date()): Promise<PooledIp[]> {
  const rows = await db
    .selectFrom('ip_pool_members as m')
    .innerJoin('ip_addresses as ip', 'ip.id', 'm.ip_id')
    .innerJoin('ip_pools as p', 'p.id', 'm.pool_id')
    .innerJoin('nodes as n', 'n.id', 'ip.node_id')
    .leftJoin('provider_projects as pp', 'pp.id', 'n.provider_project_id')
    .select(['ip.id as ipId', 'ip.address', 'ip.state', 'n.id as nodeId', 'n.name as nodeName', 'p.id as poolId', 'p.name as poolName', 'p.tier', 'm.weight'])
    .select(READINESS_COLUMNS)
    .orderBy('ip.address')
    .execute();
  return rows.map(({ ipProviderId, rdnsVerifiedAt, nodeProjectId, projectEgress, probeOk, probeAt, ...r }) => {
    const address = bareAddress(r.address);
    return { ...r, address, sourceName: egressSourceName(address), readiness: readinessOf({ ipProviderId, rdnsVerifiedAt, nodeProjectId, projectEgress, probeOk, probeAt }, now) };
  });
}

/** Select these with `ip_addresses as ip`, `nodes as n` and `provider_projects as pp` (left) joined. */
export const READINESS_COLUMNS = [
  'ip.provider_floating_ip_id as ipProviderId',
  'ip.rdns_verified_at as rdnsVerifiedAt',
  'n.provider_project_id as nodeProjectId',
  'pp.port25_egress as projectEgress',
  'n.port25_probe_ok as probeOk',
  'n.port25_probe_at as probeAt',
] as const;

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
