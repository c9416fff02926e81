/**
 * On Hetzner an IP is routed to one server: a node outage takes all its IPs with it. Keep no node's
 * share of a tier's IPs above a limit (25% by default), and say when the fleet cannot satisfy it.
 */
export interface TierIp {
  ipId: string;
  nodeId: string;
  nodeName: string;
}

export interface DiversityReport {
  ips: number;
  nodes: number;
  max_share_pct: number;
  worst: { node: string; ips: number; share_pct: number } | null;
  satisfied: boolean;
  /** the smallest number of nodes that could satisfy the limit with this many IPs */
  nodes_needed: number;
  problems: string[];
}

export function checkNodeDiversity(tier: string, ips: readonly TierIp[], maxSharePct: number): DiversityReport {
  const byNode = new Map<string, { name: string; n: number }>();
  for (const ip of ips) {
    const e = byNode.get(ip.nodeId) ?? { name: ip.nodeName, n: 0 };
    e.n++;
    byNode.set(ip.nodeId, e);
  }
  const total = ips.length;
  const maxPerNode = Math.max(1, Math.floor((total * maxSharePct) / 100));
  const nodesNeeded = total === 0 ? 0 : Math.ceil(total / maxPerNode);
  let worst: DiversityReport['worst'] = null;
  const problems: string[] = [];
  for (const [, e] of [...byNode.entries()].sort((a, b) => b[1].n - a[1].n || (a[1].name < b[1].name ? -1 : 1))) {
    const share = (e.n / total) * 100;
    if (!worst) worst = { node: e.name, ips: e.n, share_pct: Math.round(share * 10) / 10 };
    if (share > maxSharePct) problems.push(`${tier}: node ${e.name} holds ${e.n} of ${total} IPs (${share.toFixed(1)}% > ${maxSharePct}%)`);
  }
  if (total > 0 && 100 / total > maxSharePct) {
    problems.push(`${tier}: with ${total} IP(s) any one node holds ${(100 / total).toFixed(1)}% > ${maxSharePct}%: the tier needs at least ${Math.ceil(100 / maxSharePct)} IPs on as many nodes`);
  } else if (byNode.size < nodesNeeded) {
    problems.push(`${tier}: ${total} IPs need at least ${nodesNeeded} nodes to keep each at or under ${maxSharePct}%, the tier uses ${byNode.size}`);
  }
  return { ips: total, nodes: byNode.size, max_share_pct: maxSharePct, worst, satisfied: problems.length === 0, nodes_needed: nodesNeeded, problems };
}
