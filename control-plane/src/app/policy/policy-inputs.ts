/** Everything a node's policy depends on, read from the database into the pure model's inputs. */
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { ShardEntry } from '../../adapters/pg/tables.js';
import { capsForDay } from '../../domain/fleet/warmup.js';
import { bareAddress } from '../../domain/fleet/naming.js';
import type { PolicyInputs } from '../../domain/policy/policy-model.js';
import type { Tier } from '../../domain/pools/placement.js';
import { readSettings } from '../settings.js';
import { READINESS_COLUMNS, readinessOf } from '../pools/fleet-state.js';

/** The fleet-wide part of every node's inputs: read once, then combined with each node. */
export type PolicyState = Omit<PolicyInputs, 'node'>;

export async function loadPolicyState(db: Db | Tx, dkimKeyDir: string, now: Date = new Date()): Promise<PolicyState> {
  const settings = await readSettings(db);
  const warmup = settings.ip_warmup;
  const ips = await db
    .selectFrom('ip_addresses as ip')
    .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
    .leftJoin('ip_pools as p', 'p.id', 'm.pool_id')
    .innerJoin('nodes as n', 'n.id', 'ip.node_id')
    .leftJoin('provider_projects as pp', 'pp.id', 'n.provider_project_id')
    .select(['ip.id', 'ip.address', 'ip.node_id', 'ip.state', 'ip.rdns_name', 'ip.warmup_day', 'p.tier', 'm.weight'])
    .select(READINESS_COLUMNS)
    // ordered, so the same state reads as the same bytes (the autopilot hashes it to skip rendering)
    .orderBy('ip.id')
    .orderBy('p.tier')
    .execute();
  const tenants = await db
    .selectFrom('tenants as t')
    .innerJoin('tenant_placements as pl', (j) => j.onRef('pl.tenant_id', '=', 't.id').on('pl.superseded_at', 'is', null))
    .leftJoin('tenant_trust as tt', 'tt.tenant_id', 't.id')
    .select(['t.id', 'pl.tier', 'pl.shard', 'tt.locked'])
    .where('t.status', '=', 'active')
    .orderBy('t.id')
    .execute();
  const domains = await db
    .selectFrom('sending_domains')
    .select(['tenant_id', 'domain', 'dkim_selector', 'dkim_algorithm'])
    .where('verified_at', 'is not', null)
    .orderBy('domain')
    .execute();
  const byTenant = new Map<string, PolicyInputs['tenants'][number]['domains']>();
  for (const d of domains) {
    const list = byTenant.get(d.tenant_id) ?? [];
    list.push({ domain: d.domain, selector: d.dkim_selector, algorithm: d.dkim_algorithm });
    byTenant.set(d.tenant_id, list);
  }
  return {
    dkimKeyDir,
    externalPerHour: { premium: settings.placement.premium_external_per_hour, standard: settings.placement.standard_external_per_hour },
    ips: ips.map((ip) => ({
      ipId: ip.id,
      address: bareAddress(ip.address),
      nodeId: ip.node_id,
      state: ip.state,
      rdnsName: ip.rdns_name,
      tier: (ip.tier as Tier | null) ?? null,
      weight: ip.weight ?? 100,
      warmupCaps: ip.state === 'warming' ? capsForDay(ip.warmup_day, warmup) : null,
      // hand-registered IPs keep the shape they always had (and so the same rendered bytes)
      ...withReadiness(readinessOf(ip, now)),
    })),
    tenants: tenants.map((t) => ({
      id: t.id,
      tier: t.tier,
      locked: t.locked ?? true,
      shardIpIds: (t.shard as unknown as ShardEntry[]).map((s) => s.ip_id),
      domains: (byTenant.get(t.id) ?? []).sort((a, b) => (a.domain < b.domain ? -1 : 1)),
    })),
  };
}

const withReadiness = (r: ReturnType<typeof readinessOf>) => (r === null ? {} : { readiness: r });
