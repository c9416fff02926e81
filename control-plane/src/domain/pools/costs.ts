/**
 * Approximate monthly costs: every IP's own price (or the baseline), every node's price (or the VPS
 * baseline) spread over the IPs it hosts, summed per tier; tenants carry their tier's cost in proportion
 * to the mail they delivered through it. Pure.
 */
import type { Tier } from './placement.js';

export interface CostInputs {
  ips: { id: string; nodeId: string; tier: Tier | null; monthlyUsd: number | null }[];
  nodes: { id: string; monthlyUsd: number | null }[];
  /** delivered messages in the window, per tenant, with the tier they went through */
  tenants: { tenantId: string; tier: Tier | null; delivered: number }[];
  baseline: { ipUsd: number; vpsUsd: number };
  windowDays: number;
}

export interface TierCost {
  tier: Tier | 'unassigned';
  ips: number;
  ip_usd: number;
  node_usd: number;
  total_usd: number;
  delivered: number;
  per_1000_delivered_usd: number | null;
}

const money = (x: number): number => Math.round(x * 100) / 100;
const per1000 = (usd: number, delivered: number, windowDays: number): number | null =>
  delivered > 0 ? Math.round(((usd * (windowDays / 30.4375)) / delivered) * 1000 * 10000) / 10000 : null;

export function computeCosts(i: CostInputs) {
  const nodeUsd = new Map(i.nodes.map((n) => [n.id, n.monthlyUsd ?? i.baseline.vpsUsd]));
  const ipsPerNode = new Map<string, number>();
  for (const ip of i.ips) ipsPerNode.set(ip.nodeId, (ipsPerNode.get(ip.nodeId) ?? 0) + 1);

  const tiers = new Map<TierCost['tier'], TierCost>();
  const tierOf = (t: TierCost['tier']) => {
    let e = tiers.get(t);
    if (!e) tiers.set(t, (e = { tier: t, ips: 0, ip_usd: 0, node_usd: 0, total_usd: 0, delivered: 0, per_1000_delivered_usd: null }));
    return e;
  };
  for (const ip of i.ips) {
    const e = tierOf(ip.tier ?? 'unassigned');
    e.ips++;
    e.ip_usd += ip.monthlyUsd ?? i.baseline.ipUsd;
    e.node_usd += (nodeUsd.get(ip.nodeId) ?? i.baseline.vpsUsd) / (ipsPerNode.get(ip.nodeId) ?? 1);
  }
  // nodes without IPs still cost money
  let idleNodeUsd = 0;
  for (const n of i.nodes) if (!ipsPerNode.has(n.id)) idleNodeUsd += nodeUsd.get(n.id)!;
  if (idleNodeUsd > 0) tierOf('unassigned').node_usd += idleNodeUsd;

  for (const t of i.tenants) if (t.tier) tierOf(t.tier).delivered += t.delivered;
  for (const e of tiers.values()) {
    e.ip_usd = money(e.ip_usd);
    e.node_usd = money(e.node_usd);
    e.total_usd = money(e.ip_usd + e.node_usd);
    e.per_1000_delivered_usd = per1000(e.total_usd, e.delivered, i.windowDays);
  }

  const perTenant = i.tenants
    .filter((t) => t.tier)
    .map((t) => {
      const tier = tiers.get(t.tier!)!;
      const share = tier.delivered > 0 ? t.delivered / tier.delivered : 0;
      return { tenant_id: t.tenantId, tier: t.tier!, delivered: t.delivered, share_of_tier_pct: Math.round(share * 10000) / 100, cost_usd: money(share * tier.total_usd) };
    })
    .sort((a, b) => b.cost_usd - a.cost_usd || (a.tenant_id < b.tenant_id ? -1 : 1));

  const order: TierCost['tier'][] = ['premium', 'standard', 'rehabilitation', 'quarantine', 'unassigned'];
  const perTier = order.filter((t) => tiers.has(t)).map((t) => tiers.get(t)!);
  const total = perTier.reduce((n, t) => n + t.total_usd, 0);
  const delivered = i.tenants.reduce((n, t) => n + t.delivered, 0);
  return {
    per_tier: perTier,
    per_tenant: perTenant,
    total: { monthly_usd: money(total), delivered, per_1000_delivered_usd: per1000(total, delivered, i.windowDays) },
  };
}
