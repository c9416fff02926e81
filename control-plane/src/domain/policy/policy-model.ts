/**
 * What one KumoMTA node must do, derived from the control plane's state: which of its IPs are egress
 * sources (with their EHLO names and warm-up caps), which egress pools exist on it, where each tenant's
 * mail leaves from on each lane, which DKIM key signs each domain, and the safe default for anything
 * unknown. Pure and deterministic: the same state gives the same model, whose hash names the policy.
 *
 * Egress pools are per distinct shard (the set of a tenant's IPs that live on this node), not per
 * tenant, so a fleet of 10,000 tenants needs only as many pools as there are distinct IP sets.
 */
import { createHash } from 'node:crypto';
import { ipCarriesMail, type IpState, type MailReadiness } from '../fleet/ip-lifecycle.js';
import { egressSourceName, KUMO_SHAPING_PROVIDER_CLASSES, MAILBOX_PROVIDERS, type MailboxProvider } from '../fleet/naming.js';
import { capsAsThrottles, type ProviderCaps } from '../fleet/warmup.js';
import type { Tier } from '../pools/placement.js';
import { externalThrottleName, warmupThrottleName } from './throttles.js';

/** The shape of the generated module; the node runtime refuses any other (lua-policy/src/cp_data.lua). */
export const POLICY_FORMAT = 2;

export interface PolicyIp {
  ipId: string;
  address: string;
  nodeId: string;
  state: IpState;
  rdnsName: string;
  tier: Tier | null;
  weight: number;
  /** today's per-provider caps while warming; null when active */
  warmupCaps: ProviderCaps | null;
  /** provisioned IPs: reverse DNS and port-25 egress (ipCarriesMail); absent for hand-registered ones */
  readiness?: MailReadiness | null;
}

export interface PolicyTenant {
  id: string;
  tier: Tier;
  /** external sending locked by the trust engine: kumod refuses the tenant's external mail too */
  locked: boolean;
  shardIpIds: string[];
  domains: { domain: string; selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256' }[];
}

export interface PolicyInputs {
  node: { id: string; name: string };
  ips: PolicyIp[];
  tenants: PolicyTenant[];
  dkimKeyDir: string;
  /** external messages per hour by tier */
  externalPerHour: { premium: number; standard: number };
}

export interface PolicyModel {
  format: number;
  node: { name: string };
  /**
   * Every IP the node holds, whether or not it carries mail: a pool kumod cached from the previous
   * module may still name an IP that has just been retired or quarantined, and a source kumod cannot
   * resolve fails reception. Pools name only sources that carry mail.
   */
  sources: Record<string, { source_address: string; ehlo_domain: string; carries_mail: boolean; warmup: Record<MailboxProvider, { name: string; spec: string }> | null }>;
  pools: Record<string, { source: string; weight: number }[]>;
  tenants: Record<string, { tier: Tier; external_pool: string | null; warming_pool: string | null; external_locked: boolean; external_throttle: { name: string; spec: string } | null }>;
  dkim: Record<string, { selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256'; key_file: string }>;
  /** return-path domains whose bounces and feedback reports the inbound listener logs (and drops) */
  inbound_domains: string[];
  /** where mail of unknown tenants, or of tenants with no IP here, leaves from; null: kumod's own default */
  default_pool: string | null;
  /** KumoMTA shaping provider name -> warm-up class (sites of any other provider are `other`) */
  providers: Record<string, MailboxProvider>;
}

/** A record keyed by names that come from tenants and operators: no prototype, so `__proto__` is a key like any other. */
const dict = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

const warmupThrottles = (source: string, caps: ProviderCaps): Record<MailboxProvider, { name: string; spec: string }> => {
  const specs = capsAsThrottles(caps);
  return Object.fromEntries(MAILBOX_PROVIDERS.map((p) => [p, { name: warmupThrottleName(source, p), spec: specs[p] }])) as Record<MailboxProvider, { name: string; spec: string }>;
};

function poolName(prefix: string, sources: string[]): string {
  const h = createHash('sha256').update(sources.join(',')).digest('hex').slice(0, 10);
  return `${prefix}-${h}`;
}

export function buildPolicyModel(i: PolicyInputs): PolicyModel {
  const held = i.ips.filter((ip) => ip.nodeId === i.node.id).sort((a, b) => (a.address < b.address ? -1 : 1));
  const local = held.filter((ip) => ipCarriesMail(ip));
  const localById = new Map(local.map((ip) => [ip.ipId, ip]));
  const sources = dict<PolicyModel['sources'][string]>();
  for (const ip of held) {
    const name = egressSourceName(ip.address);
    sources[name] = {
      source_address: ip.address,
      ehlo_domain: ip.rdnsName,
      carries_mail: ipCarriesMail(ip),
      warmup: ip.state === 'warming' && ip.warmupCaps ? warmupThrottles(name, ip.warmupCaps) : null,
    };
  }

  const pools = dict<PolicyModel['pools'][string]>();
  const definePool = (prefix: string, ips: PolicyIp[]): string | null => {
    if (ips.length === 0) return null;
    const members = ips.map((ip) => ({ source: egressSourceName(ip.address), weight: ip.weight })).sort((a, b) => (a.source < b.source ? -1 : 1));
    const name = poolName(prefix, members.map((m) => `${m.source}:${m.weight}`));
    pools[name] = members;
    return name;
  };
  const tierPool = (tier: Tier): string | null => definePool(tier, local.filter((ip) => ip.tier === tier));

  // the safe default: the least exposed IPs this node has, never a premium one
  const defaultPool = tierPool('rehabilitation') ?? tierPool('quarantine') ?? tierPool('standard');
  const warmingPool = tierPool('rehabilitation') ?? defaultPool;

  const tenants = dict<PolicyModel['tenants'][string]>();
  const dkim = dict<PolicyModel['dkim'][string]>();
  for (const t of [...i.tenants].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const mine = t.shardIpIds.map((id) => localById.get(id)).filter((ip): ip is PolicyIp => ip !== undefined && ip.tier === t.tier);
    const external = t.tier === 'premium' || t.tier === 'standard' ? (definePool(t.tier, mine) ?? tierPool(t.tier) ?? defaultPool) : null;
    tenants[t.id] = {
      tier: t.tier,
      external_pool: external,
      warming_pool: t.tier === 'quarantine' ? (tierPool('quarantine') ?? warmingPool) : warmingPool,
      external_locked: t.locked || t.tier === 'rehabilitation' || t.tier === 'quarantine',
      external_throttle: t.tier === 'premium' || t.tier === 'standard' ? { name: externalThrottleName(t.id), spec: `${i.externalPerHour[t.tier]}/h` } : null,
    };
    for (const d of t.domains) {
      dkim[d.domain] = { selector: d.selector, algorithm: d.algorithm, key_file: `${i.dkimKeyDir}/${d.domain}/${d.selector}.key` };
    }
  }
  const inbound = [...new Set(Object.keys(dkim).map((d) => `bounces.${d}`))].sort();
  return {
    format: POLICY_FORMAT,
    node: { name: i.node.name },
    sources,
    pools,
    tenants,
    dkim,
    inbound_domains: inbound,
    default_pool: defaultPool,
    providers: { ...KUMO_SHAPING_PROVIDER_CLASSES },
  };
}

/** Canonical JSON (sorted keys) of the model, and its SHA-256: the name of what a node runs. */
export function modelHash(model: PolicyModel): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(model))).digest('hex');
}
