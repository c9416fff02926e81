/**
 * Which nodes can take a tenant's message on a lane. A node routes a tenant's mail only through its
 * own egress sources (each node's policy names its own IPs), so the gateway must hand the message to a
 * node that holds the pool the message will leave from: the same choice the policy model makes.
 */
import type { Tier } from '../pools/placement.js';
import type { Lane } from './gate.js';

export interface RoutingIp {
  ipId: string;
  nodeId: string;
  tier: Tier | null;
  /** active or warming: the IP carries mail */
  carries: boolean;
}

export interface RoutingTenant {
  tier: Tier | null;
  shardIpIds: readonly string[];
}

/**
 * Candidate node ids, best first and deterministic. A premium or standard tenant's external mail only
 * goes to nodes holding IPs of its tier (its shard's nodes first): failing over to a node that would
 * send it from rehabilitation IPs would spend those IPs' reputation on mail that was never meant for
 * them. Only when no node has a fitting IP at all (a fleet being built) does any node do.
 */
export function relayCandidates(lane: Lane, tenant: RoutingTenant, ips: readonly RoutingIp[], allNodeIds: readonly string[]): string[] {
  const live = ips.filter((ip) => ip.carries);
  const nodesOf = (pred: (ip: RoutingIp) => boolean): string[] => [...new Set(live.filter(pred).map((ip) => ip.nodeId))].sort();
  let groups: string[][];
  if (lane === 'external' && (tenant.tier === 'premium' || tenant.tier === 'standard')) {
    const shard = new Set(tenant.shardIpIds);
    groups = [nodesOf((ip) => shard.has(ip.ipId) && ip.tier === tenant.tier), nodesOf((ip) => ip.tier === tenant.tier)];
  } else if (tenant.tier === 'quarantine') {
    groups = [nodesOf((ip) => ip.tier === 'quarantine'), nodesOf((ip) => ip.tier === 'rehabilitation')];
  } else {
    groups = [nodesOf((ip) => ip.tier === 'rehabilitation'), nodesOf((ip) => ip.tier === 'quarantine' || ip.tier === 'standard')];
  }
  const out = [...new Set(groups.flat())];
  return out.length > 0 ? out : [...allNodeIds].sort();
}
