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
import { carriesMail } from '../../domain/fleet/ip-lifecycle.js';
import { patternsFor } from '../../domain/suppression/pattern.js';
import { readSettings } from '../settings.js';
import { cleanWarmingSendsSince } from '../trust/daily-metrics.js';

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
  /** warming sends the network planned for this tenant today */
  warmingPlannedToday: number;
}

interface Fleet {
  nodes: RelayNode[];
  ips: RoutingIp[];
}

interface Cached<T> {
  at: number;
  value: Promise<T>;
  settled: boolean;
  reloading?: boolean;
}

export class SubmissionFacts {
  private readonly tenants = new Map<string, Cached<TenantSubmissionFacts | null>>();
  private readonly networks = new Map<string, Cached<string | null>>();
  private readonly peers = new Map<string, Cached<{ tenantId: string } | null>>();
  private readonly fleetCache = new Map<string, Cached<Fleet>>();

  constructor(
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly clock: () => Date,
  ) {}

  /** Drop everything cached: tests and the admin API's changes take effect at once. */
  invalidate(): void {
    this.tenants.clear();
    this.networks.clear();
    this.peers.clear();
    this.fleetCache.clear();
  }

  /**
   * Stale-while-revalidate: an expired entry still answers while one reload runs in the background,
   * so no message waits for the several queries a reload takes; only a missing entry is waited for.
   */
  private cached<K, T>(map: Map<K, Cached<T>>, key: K, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = map.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.value;
    if (hit && hit.settled && !hit.reloading && this.ttlMs > 0) {
      hit.reloading = true;
      load().then(
        (v) => map.set(key, { at: Date.now(), value: Promise.resolve(v), settled: true }),
        () => {
          hit.reloading = false;
        },
      );
      return hit.value;
    }
    if (hit && hit.reloading) return hit.value;
    // concurrent sessions of one tenant share one load; a failed load is not kept
    const entry: Cached<T> = { at: now, value: load(), settled: false };
    map.set(key, entry);
    entry.value.then(
      () => (entry.settled = true),
      () => map.delete(key),
    );
    if (map.size > 50_000) map.delete(map.keys().next().value as K);
    return entry.value;
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

  /** The peer of the warming network with this address, for the warming agent's sessions. */
  warmingPeer(address: string): Promise<{ tenantId: string } | null> {
    return this.cached(this.peers, address.toLowerCase(), async () => {
      const row = await this.db
        .selectFrom('warming_members')
        .select('tenant_id')
        .where('address', '=', address.toLowerCase())
        .where('kind', '=', 'peer')
        .where('state', '!=', 'retired')
        .executeTakeFirst();
      return row?.tenant_id ? { tenantId: row.tenant_id } : null;
    });
  }

  private fleet(): Promise<Fleet> {
    return this.cached(this.fleetCache, 'fleet', async (): Promise<Fleet> => {
      const nodes = await this.db.selectFrom('nodes').select(['id', 'name', 'public_address', 'relay_host', 'relay_port']).orderBy('name').execute();
      const ips = await this.db
        .selectFrom('ip_addresses as ip')
        .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
        .leftJoin('ip_pools as p', 'p.id', 'm.pool_id')
        .select(['ip.id', 'ip.node_id', 'ip.state', 'p.tier'])
        .execute();
      return {
        nodes: nodes.map((n) => ({ id: n.id, name: n.name, host: n.relay_host ?? bareAddress(n.public_address), port: n.relay_port })),
        ips: ips.map((ip) => ({ ipId: ip.id, nodeId: ip.node_id, tier: (ip.tier as Tier | null) ?? null, carries: carriesMail(ip.state) })),
      };
    });
  }

  private async loadTenant(tenantId: string): Promise<TenantSubmissionFacts | null> {
    const now = this.clock();
    const tenant = await this.db
      .selectFrom('tenants as t')
      .leftJoin('tenant_trust as tt', 'tt.tenant_id', 't.id')
      .leftJoin('tenant_placements as pl', (j) => j.onRef('pl.tenant_id', '=', 't.id').on('pl.superseded_at', 'is', null))
      .select(['t.id', 't.status', 'tt.score', 'tt.locked', 'tt.lock_kind', 'tt.locked_at', 'tt.rehab_remaining_sends', 'pl.tier', 'pl.shard'])
      .where('t.id', '=', tenantId)
      .executeTakeFirst();
    if (!tenant) return null;
    const [settings, domains, fleet, quarantine, planned] = await Promise.all([
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
      this.db
        .selectFrom('warming_sends')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('day', '=', now.toISOString().slice(0, 10))
        .executeTakeFirstOrThrow(),
    ]);

    const scored = tenant.score !== null;
    const locked = scored ? tenant.locked === true : true;
    let rehabilitation: string | null = scored ? null : 'The tenant has not been scored yet: the worker scores new tenants within minutes.';
    if (scored && locked && tenant.lock_kind === 'authentication') {
      rehabilitation = 'Verify SPF, DKIM and DMARC for the sending domain.';
    } else if (scored && locked && tenant.locked_at) {
      // the remaining sends come from the unlock rule on counts that include what was done
      const done = await cleanWarmingSendsSince(this.db, tenantId, tenant.locked_at);
      const remaining = tenant.rehab_remaining_sends;
      rehabilitation =
        remaining === null
          ? `Rehabilitation: ${done} clean warming sends so far, and clean sends alone cannot unlock it: it needs more engagement (see its trust page).`
          : `Rehabilitation: ${done} of ${done + remaining} clean warming sends done; send them on the warming lane.`;
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
      warmingPlannedToday: Number(planned.n),
    };
  }
}

export interface RecipientFacts {
  suppression: GateFacts['suppression'];
  warmingMember: boolean;
}

export interface RecipientKey {
  tenantId: string;
  address: string;
}

/**
 * Suppression (the tenant's list before the global one; an address or its domain wildcard) and
 * warming-network membership for many recipients in one round trip.
 */
export async function recipientFactsBatch(db: Db, keys: readonly RecipientKey[], now: Date): Promise<RecipientFacts[]> {
  if (keys.length === 0) return [];
  const addresses = keys.map((k) => k.address.toLowerCase());
  const wildcards = keys.map((k) => patternsFor(k.address)[1] ?? k.address.toLowerCase());
  const { rows } = await sql<{ i: string; pattern: string | null; tenant_id: string | null; reason: string | null; member: boolean }>`
    SELECT r.i, s.pattern, s.tenant_id, s.reason, (w.id IS NOT NULL) AS member
    FROM unnest(${keys.map((k) => k.tenantId)}::uuid[], ${addresses}::text[], ${wildcards}::text[]) WITH ORDINALITY AS r(tenant_id, address, wildcard, i)
    LEFT JOIN LATERAL (
      SELECT x.pattern, x.tenant_id, x.reason::text AS reason FROM suppressions x
      WHERE (x.tenant_id = r.tenant_id OR x.tenant_id IS NULL)
        AND x.pattern IN (r.address, r.wildcard)
        AND (x.expires_at IS NULL OR x.expires_at > ${now})
      ORDER BY x.tenant_id NULLS LAST
      LIMIT 1
    ) AS s ON true
    LEFT JOIN warming_members w ON w.address = r.address AND w.state = 'active'
    ORDER BY r.i`.execute(db);
  return rows.map((r) => ({
    suppression: r.pattern ? { pattern: r.pattern, scope: r.tenant_id ? 'tenant' : 'global', reason: r.reason! } : null,
    warmingMember: r.member,
  }));
}
