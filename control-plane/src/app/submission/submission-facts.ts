/**
 * What the gateway knows about tenants and the fleet, read from PostgreSQL and cached: which domains a
 * tenant verified, its active SMTP credentials, its trust lock and rehabilitation, its placement and
 * external throttle, the nodes that can take its mail, and which tenant owns a submission network.
 * Suppressions and budgets change per message and are read per recipient instead.
 *
 * Freshness: a change in PostgreSQL is announced by the notify_gate_facts triggers and drops the
 * entries it affects at once (`apply`); CP_SMTP_FACTS_TTL_MS is the fallback for a lost notification,
 * and no entry is ever used past it (see FreshCache). When PostgreSQL cannot be read once the TTL has
 * passed, callers get a FactsUnavailableError, never the old value.
 */
import { sql } from 'kysely';
import type { Db } from '../../adapters/pg/database.js';
import type { ShardEntry } from '../../adapters/pg/tables.js';
import type { GateFacts, Lane } from '../../domain/submission/gate.js';
import { relayCandidates, type RoutingIp } from '../../domain/submission/relay-routing.js';
import type { Tier } from '../../domain/pools/placement.js';
import { bareAddress } from '../../domain/fleet/naming.js';
import { ipCarriesMail } from '../../domain/fleet/ip-lifecycle.js';
import { READINESS_COLUMNS, readinessOf } from '../pools/fleet-state.js';
import { patternsFor } from '../../domain/suppression/pattern.js';
import { WIDEST_PREFIX } from '../../domain/submission/submission-networks.js';
import { readSettings } from '../settings.js';
import { cleanWarmingSendsSince } from '../trust/daily-metrics.js';
import type { GateFactChange } from '../../adapters/pg/change-feed.js';
import { FreshCache, type Stamped } from './fresh-cache.js';

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
  /** ids of the tenant's SMTP credentials that are not revoked */
  activeCredentialIds: ReadonlySet<string>;
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

/** The facts could not be read (PostgreSQL unreachable) and nothing young enough was cached. */
export class FactsUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`submission facts cannot be read: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'FactsUnavailableError';
  }
}

const unavailable = (e: unknown): never => {
  throw e instanceof FactsUnavailableError ? e : new FactsUnavailableError(e);
};

export class SubmissionFacts {
  private readonly tenants: FreshCache<string, TenantSubmissionFacts | null>;
  private readonly networks: FreshCache<string, string | null>;
  private readonly peers: FreshCache<string, { tenantId: string } | null>;
  private readonly fleetCache: FreshCache<'fleet', Fleet>;

  constructor(
    private readonly db: Db,
    readonly ttlMs: number,
    private readonly clock: () => Date,
    /** monotonic milliseconds, for ages */
    monotonic: () => number = () => performance.now(),
    onRefreshError: (e: Error) => void = () => {},
  ) {
    this.tenants = new FreshCache(ttlMs, monotonic, 50_000, onRefreshError);
    this.networks = new FreshCache(ttlMs, monotonic, 50_000, onRefreshError);
    this.peers = new FreshCache(ttlMs, monotonic, 50_000, onRefreshError);
    this.fleetCache = new FreshCache(ttlMs, monotonic, 1, onRefreshError);
  }

  /** Drop everything cached: tests and the admin API's changes take effect at once. */
  invalidate(): void {
    this.apply({ scope: 'all' });
  }

  /** Drop what a change notification says changed. */
  apply(change: GateFactChange): void {
    switch (change.scope) {
      case 'tenant':
        this.tenants.invalidate(change.tenant);
        return;
      case 'fleet':
        // every tenant's facts embed the relay nodes picked from the fleet
        this.fleetCache.clear();
        this.tenants.clear();
        return;
      case 'networks':
        this.networks.clear();
        return;
      case 'peers':
        this.peers.clear();
        return;
      case 'all':
        this.fleetCache.clear();
        this.tenants.clear();
        this.networks.clear();
        this.peers.clear();
    }
  }

  tenant(tenantId: string): Promise<TenantSubmissionFacts | null> {
    return this.tenants.stamped(tenantId, () => this.loadTenant(tenantId)).then((s) => s.value, unavailable);
  }

  /** The tenant's facts read now, for a caller that has reason to doubt the cached ones. */
  freshTenant(tenantId: string): Promise<TenantSubmissionFacts | null> {
    return this.tenants.reload(tenantId, () => this.loadTenant(tenantId)).then((s) => s.value, unavailable);
  }

  /** The tenant that bound a network containing `ip`, or null. */
  networkTenant(ip: string): Promise<string | null> {
    return this.networks.get(ip, async () => {
      const row = await this.db
        .selectFrom('submission_networks')
        .select('tenant_id')
        .where(sql<boolean>`network >>= ${ip}::inet`)
        // the API refuses wider networks; one bound before that limit existed binds nothing
        .where(sql<boolean>`masklen(network) >= CASE family(network) WHEN 4 THEN ${WIDEST_PREFIX[4]}::int ELSE ${WIDEST_PREFIX[6]}::int END`)
        .executeTakeFirst();
      return row?.tenant_id ?? null;
    }).catch(unavailable);
  }

  /** The peer of the warming network with this address, for the warming agent's sessions. */
  warmingPeer(address: string): Promise<{ tenantId: string } | null> {
    return this.peers.get(address.toLowerCase(), async () => {
      const row = await this.db
        .selectFrom('warming_members')
        .select('tenant_id')
        .where('address', '=', address.toLowerCase())
        .where('kind', '=', 'peer')
        .where('state', '!=', 'retired')
        .executeTakeFirst();
      return row?.tenant_id ? { tenantId: row.tenant_id } : null;
    }).catch(unavailable);
  }

  private fleet(): Promise<Stamped<Fleet>> {
    return this.fleetCache.stamped('fleet', async () => {
      const nodes = await this.db.selectFrom('nodes').select(['id', 'name', 'public_address', 'relay_host', 'relay_port']).orderBy('name').execute();
      const ips = await this.db
        .selectFrom('ip_addresses as ip')
        .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
        .leftJoin('ip_pools as p', 'p.id', 'm.pool_id')
        .innerJoin('nodes as n', 'n.id', 'ip.node_id')
        .leftJoin('provider_projects as pp', 'pp.id', 'n.provider_project_id')
        .select(['ip.id', 'ip.node_id', 'ip.state', 'p.tier'])
        .select(READINESS_COLUMNS)
        .execute();
      const now = this.clock();
      return {
        value: {
          nodes: nodes.map((n) => ({ id: n.id, name: n.name, host: n.relay_host ?? bareAddress(n.public_address), port: n.relay_port })),
          ips: ips.map((ip) => ({ ipId: ip.id, nodeId: ip.node_id, tier: (ip.tier as Tier | null) ?? null, carries: ipCarriesMail({ state: ip.state, readiness: readinessOf(ip, now) }) })),
        },
      };
    });
  }

  /** The facts are as old as the fleet they were built on, when that is older than this read. */
  private async loadTenant(tenantId: string): Promise<{ value: TenantSubmissionFacts | null; asOf?: number }> {
    const now = this.clock();
    const tenant = await this.db
      .selectFrom('tenants as t')
      .leftJoin('tenant_trust as tt', 'tt.tenant_id', 't.id')
      .leftJoin('tenant_placements as pl', (j) => j.onRef('pl.tenant_id', '=', 't.id').on('pl.superseded_at', 'is', null))
      .select(['t.id', 't.status', 'tt.score', 'tt.locked', 'tt.lock_kind', 'tt.locked_at', 'tt.rehab_remaining_sends', 'pl.tier', 'pl.shard'])
      .where('t.id', '=', tenantId)
      .executeTakeFirst();
    if (!tenant) return { value: null };
    const [settings, domains, credentials, { value: fleet, asOf }, quarantine, planned] = await Promise.all([
      readSettings(this.db),
      this.db.selectFrom('sending_domains').select('domain').where('tenant_id', '=', tenantId).where('verified_at', 'is not', null).execute(),
      this.db.selectFrom('smtp_credentials').select('id').where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).execute(),
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
    const value: TenantSubmissionFacts = {
      tenantId,
      active: tenant.status === 'active',
      verifiedDomains: new Set(domains.map((d) => d.domain.toLowerCase())),
      activeCredentialIds: new Set(credentials.map((c) => c.id)),
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
    return { value, asOf };
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
