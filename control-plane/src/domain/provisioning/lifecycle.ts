/**
 * Undoing what was bought: when a node may be retired from its provider, when its row may simply be
 * forgotten, and when a provisioning intent may be cancelled. Pure decisions; the use cases in
 * app/provisioning/ load the facts and carry them out.
 *
 * Imports: domain only (this is the pure core).
 */
import type { IpState } from '../fleet/ip-lifecycle.js';
import { err, ok, type Result } from '../shared/result.js';

export type IntentStatus = 'pending' | 'done' | 'cancelled';

/** One IP row of the node, as the decision needs it. */
export interface NodeIpFacts {
  id: string;
  address: string;
  state: IpState;
  /** bought through a provider project: the Floating IP to release; null for an IP registered by hand */
  providerFloatingIpId: string | null;
}

export interface NodeRetirementPlan {
  /** bought IPs to release at the provider before the server goes (each is retired already) */
  release: { ipId: string; floatingIpId: string; address: string }[];
  /** every IP row of the node: all retired, they go with it (ip_addresses.node_id is NOT NULL) */
  removeRows: string[];
}

export interface NodeRetirementRefusal {
  /** the IPs that still carry (or may again carry) mail; retire them first */
  holding: { id: string; address: string; state: IpState }[];
}

/**
 * A node may leave the provider only once none of its IPs can carry mail: deleting the server under a
 * warming, active or quarantined IP would drop mail in flight and forget a reputation the operator
 * has not decided to give up. Retiring is the operator's decision, so it is never taken here.
 */
export function planNodeRetirement(ips: readonly NodeIpFacts[]): Result<NodeRetirementPlan, NodeRetirementRefusal> {
  const holding = ips.filter((ip) => ip.state !== 'retired').map((ip) => ({ id: ip.id, address: ip.address, state: ip.state }));
  if (holding.length) return err({ holding });
  return ok({
    release: ips.flatMap((ip) => (ip.providerFloatingIpId === null ? [] : [{ ipId: ip.id, floatingIpId: ip.providerFloatingIpId, address: ip.address }])),
    removeRows: ips.map((ip) => ip.id),
  });
}

/**
 * May the node row be deleted without touching the provider? Only for a node registered by hand. A
 * bought node's row is what reminds anyone that a server is being billed; forgetting it would leave the
 * server running and unseen, so its removal goes through retire-from-provider (which deletes the server
 * first, and is safe to re-run when the server is already gone).
 */
export function mayForgetNode(node: { providerServerId: string | null }): Result<true, { providerServerId: string }> {
  return node.providerServerId === null ? ok(true) : err({ providerServerId: node.providerServerId });
}

/**
 * A pending intent can be cancelled, and a cancelled one cancelled again: the cancel marks the intent
 * first and sweeps the provider after, so a run racing it (or a crash part-way) may leave something
 * under the key that only a second sweep finds. A done one is a node or IP row: retire that instead.
 */
export function mayCancelIntent(status: IntentStatus): Result<true, { status: 'done' }> {
  return status === 'done' ? err({ status }) : ok(true);
}

/** What the node last said about the mail its kumod holds (X-KCP-Queued-Messages on its pulls). */
export interface NodeQueueFacts {
  queued: { count: number; atMs: number } | null;
  nowMs: number;
  /** the operator accepts losing whatever the node holds (a dead server, a spool already gone) */
  force: boolean;
}

/** How recent the node's word must be: a few of its pulls (every 5 s by default). */
export const QUEUE_REPORT_MAX_AGE_MS = 120_000;

export type ServerDeletionRefusal =
  | { reason: 'holds_messages'; count: number }
  | { reason: 'not_reported' }
  | { reason: 'report_stale'; ageMs: number };

/**
 * May the node's server be deleted? Its spool goes with it, and a message kumod accepted is one the
 * gateway answered 250 for: never lost by an operator's click. So only once the node said, recently,
 * that it holds none; or when the operator forces it, knowing what that costs.
 */
export function mayDeleteServer(f: NodeQueueFacts): Result<true, ServerDeletionRefusal> {
  if (f.force) return ok(true);
  if (f.queued === null) return err({ reason: 'not_reported' });
  const ageMs = f.nowMs - f.queued.atMs;
  if (ageMs > QUEUE_REPORT_MAX_AGE_MS) return err({ reason: 'report_stale', ageMs });
  if (f.queued.count > 0) return err({ reason: 'holds_messages', count: f.queued.count });
  return ok(true);
}
