/**
 * What the gateway knows about tenants and the fleet, read from PostgreSQL and kept for a few seconds
 * (CP_SMTP_FACTS_TTL_MS): which domains a tenant verified, its trust lock and rehabilitation, its
 * placement and external throttle, the nodes that can take its mail, and which tenant owns a
 * submission network. Suppressions and budgets change per message and are read per recipient instead.
 */
import { sql } from 'kysely';
import type { Db } from '../../adapters/pg/database.js';
import type { ShardEntry } from '../../adapters/pg/tables.js';
import type { GateFacts, Lane } from '../../domain/submission/gate.js';
import { relayCandidates, type RoutingIp } from '../../domain/submission/relay-routing.js';
import type { Tier } from '../../domain/pools/placement.js';
import { bareAddress } from '../../domain/fleet/naming.js';
import { patternsFor } from '../../domain/suppression/pattern.js';
import { readSettings } from '../settings.js';

export interface RelayNode {
  id: string;
  name: string;
  host: string;
  port: number;
}

export interface TenantSubmissionFacts {
  tenantId: string;
  active: boolean;
  verifiedDomains: ReadonlySet<string>;
  trust: GateFacts['trust'];
  placementHold: string | null;
  /** kumod's throttle spec for the tenant's external mail, or null when it sends none */
  externalThrottleSpec: string | null;
  relayNodes: Record<Lane, RelayNode[]>;
}

interface Fleet {
  nodes: RelayNode[];
  ips: RoutingIp[];
}

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export class SubmissionFacts {
  private readonly tenants = new Map<string, Cached<TenantSubmissionFacts | null>>();
  private readonly networks = new Map<string, Cached<string | null>>();
  private fleetCache: Cached<Fleet> | null = null;

  constructor(
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly clock: () => Date,
  ) {}

  /** Drop everything cached: tests and the admin API's changes take effect at once. */
  invalidate(): void {
    this.tenants.clear();
    this.networks.clear();
    this.fleetCache = null;
  }

  private cached<K, T>(map: Map<K, Cached<T>>, key: K, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = map.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.value;
    // concurrent sessions of one tenant share one load; a failed load is not kept
    const value = load();
    map.set(key, { at: now, value });
    value.catch(() => map.delete(key));
    if (map.size > 50_000) map.delete(map.keys().next().value as K);
    return value;
  }

  tenant(tenantId: string): Promise<TenantSubmissionFacts | null> {
    return this.cached(this.tenants, tenantId, () => this.loadTenant(tenantId));
  }

  /** The tenant that bound a network containing `ip`, or null. */
  networkTenant(ip: string): Promise<string | null> {
    return this.cached(this.networks, ip, async () => {
      const row = await this.db
        .selectFrom('submission_networks')
        .select('tenant_id')
        .where(sql<boolean>`network >>= ${ip}::inet`)
        .executeTakeFirst();
      return row?.tenant_id ?? null;
    });
  }

  private fleet(): Promise<Fleet> {
    const now = Date.now();
    if (this.fleetCache && now - this.fleetCache.at < this.ttlMs) return this.fleetCache.value;
    const value = (async (): Promise<Fleet> => {
      const nodes = await this.db.selectFrom('nodes').select(['id', 'name', 'public_address', 'relay_host', 'relay_port']).orderBy('name').execute();
      const ips = await this.db
        .selectFrom('ip_addresses as ip')
        .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
        .leftJoin('ip_pools as p', 'p.id', 'm.pool_id')
        .select(['ip.id', 'ip.node_id', 'ip.state', 'p.tier'])
        .execute();
      return {
        nodes: nodes.map((n) => ({ id: n.id, name: n.name, host: n.relay_host ?? bareAddress(n.public_address), port: n.relay_port })),
        ips: ips.map((ip) => ({ ipId: ip.id, nodeId: ip.node_id, tier: (ip.tier as Tier | null) ?? null, carries: ip.state === 'active' || ip.state === 'warming' })),
      };
    })();
    this.fleetCache = { at: now, value };
    value.catch(() => {
      this.fleetCache = null;
    });
    return value;
  }

  private async loadTenant(tenantId: string): Promise<TenantSubmissionFacts | null> {
    const now = this.clock();
    const tenant = await this.db
      .selectFrom('tenants as t')
      .leftJoin('tenant_trust as tt', 'tt.tenant_id', 't.id')
      .leftJoin('tenant_placements as pl', (j) => j.onRef('pl.tenant_id', '=', 't.id').on('pl.superseded_at', 'is', null))
      .select(['t.id', 't.status', 'tt.score', 'tt.locked', 'tt.locked_at', 'tt.rehab_target_sends', 'pl.tier', 'pl.shard'])
      .where('t.id', '=', tenantId)
      .executeTakeFirst();
    if (!tenant) return null;
    const [settings, domains, fleet, quarantine] = await Promise.all([
      readSettings(this.db),
      this.db.selectFrom('sending_domains').select('domain').where('tenant_id', '=', tenantId).where('verified_at', 'is not', null).execute(),
      this.fleet(),
      tenant.tier === 'quarantine'
        ? this.db
            .selectFrom('tenant_quarantines')
            .select(['reason', 'ends_at'])
            .where('tenant_id', '=', tenantId)
            .where('released_at', 'is', null)
            .where('ends_at', '>', now)
            .orderBy('ends_at', 'desc')
            .executeTakeFirst()
        : Promise.resolve(undefined),
    ]);

    const scored = tenant.score !== null;
    const locked = scored ? tenant.locked === true : true;
    let rehabilitation: string | null = scored ? null : 'The tenant has not been scored yet: the worker scores new tenants within minutes.';
    if (scored && locked && tenant.rehab_target_sends !== null && tenant.locked_at) {
      const row = await this.db
        .selectFrom('delivery_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('lane', '=', 'warming')
        .where('outcome', '=', 'delivered')
        .where('occurred_at', '>=', tenant.locked_at)
        .executeTakeFirstOrThrow();
      const done = Math.min(Number(row.n), tenant.rehab_target_sends);
      rehabilitation = `Rehabilitation: ${done} of ${tenant.rehab_target_sends} clean warming sends done; send them on the warming lane.`;
    }

    const tier = (tenant.tier as Tier | null) ?? null;
    let placementHold: string | null = null;
    if (tier === null) placementHold = 'the tenant is not placed in an IP pool yet';
    else if (tier === 'rehabilitation') placementHold = 'the tenant is placed in the rehabilitation pool: warming lane only';
    else if (tier === 'quarantine') placementHold = quarantine ? `the tenant is quarantined until ${quarantine.ends_at.toISOString()} (${quarantine.reason})` : 'the tenant is quarantined';

    const shard = ((tenant.shard as unknown as ShardEntry[] | null) ?? []).map((s) => s.ip_id);
    const byId = new Map(fleet.nodes.map((n) => [n.id, n]));
    const pick = (lane: Lane): RelayNode[] =>
      relayCandidates(lane, { tier, shardIpIds: shard }, fleet.ips, fleet.nodes.map((n) => n.id)).map((id) => byId.get(id)!).filter(Boolean);
    return {
      tenantId,
      active: tenant.status === 'active',
      verifiedDomains: new Set(domains.map((d) => d.domain.toLowerCase())),
      trust: {
        locked,
        score: scored ? Number(tenant.score) : null,
        lockBelow: settings.trust.lock_below,
        unlockAt: settings.trust.unlock_at_or_above,
        rehabilitation,
      },
      placementHold,
      externalThrottleSpec: tier === 'premium' || tier === 'standard' ? `${settings.placement[`${tier}_external_per_hour`]}/h` : null,
      relayNodes: { external: pick('external'), warming: pick('warming') },
    };
  }
}

export interface RecipientFacts {
  suppression: GateFacts['suppression'];
  warmingMember: boolean;
}

/** Suppression (the tenant's list first, then the global one) and warming-network membership, in one round trip. */
export async function recipientFacts(db: Db, tenantId: string, address: string, now: Date): Promise<RecipientFacts> {
  const patterns = patternsFor(address);
  const { rows } = await sql<{ pattern: string | null; tenant_id: string | null; reason: string | null; member: boolean }>`
    SELECT s.pattern, s.tenant_id, s.reason,
           EXISTS (SELECT 1 FROM warming_members w WHERE w.address = ${address.toLowerCase()} AND w.state = 'active') AS member
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
      SELECT pattern, tenant_id, reason::text AS reason FROM suppressions
      WHERE (tenant_id = ${tenantId} OR tenant_id IS NULL)
        AND pattern IN (${sql.join(patterns)})
        AND (expires_at IS NULL OR expires_at > ${now})
      ORDER BY tenant_id NULLS LAST
      LIMIT 1
    ) AS s ON true`.execute(db);
  const r = rows[0]!;
  return {
    suppression: r.pattern ? { pattern: r.pattern, scope: r.tenant_id ? 'tenant' : 'global', reason: r.reason! } : null,
    warmingMember: r.member,
  };
}
