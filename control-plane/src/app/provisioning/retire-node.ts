/**
 * Retire a bought node from its provider, as steps:
 *   1. load the node and its IPs; refuse (409, naming them) while any IP is not retired
 *      (domain/provisioning/lifecycle.ts planNodeRetirement)
 *   2. at the provider: release its bought Floating IPs still there (also one a crashed buy left with
 *      no row), then delete the server and wait for it
 *   3. one transaction: the IP rows and the node row go, audited
 * Every provider step counts "already gone" as done, so a run that crashed after step 2 is finished by
 * running it again.
 */
import type { AppContext } from '../../context.js';
import { inTransaction, type Db, type Tx } from '../../adapters/pg/database.js';
import { bareAddress } from '../../domain/fleet/naming.js';
import { mayDeleteServer, planNodeRetirement, type NodeIpFacts, type NodeRetirementPlan } from '../../domain/provisioning/lifecycle.js';
import { AppError, conflict, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { deleteServerAndWait, guarded, heldUnderKey, releaseFloatingIp } from './provider-calls.js';
import { providerOf } from './provider-projects.js';

export interface ReleasedIp {
  /** the IP row it was; null for a Floating IP a crashed buy left without one */
  ip_id: string | null;
  address: string;
  provider_floating_ip_id: string;
  /** false: it was already gone at the provider */
  released: boolean;
}

export interface RetiredNode {
  node_id: string;
  name: string;
  provider_server_id: string;
  /** false: the server was already gone (a re-run after a crash, or deleted in the console) */
  server_deleted: boolean;
  released_ips: ReleasedIp[];
  /** the retired IP rows removed with the node */
  removed_ip_ids: string[];
}

async function nodeIps(db: Db | Tx, nodeId: string): Promise<NodeIpFacts[]> {
  const rows = await db.selectFrom('ip_addresses').select(['id', 'address', 'state', 'provider_floating_ip_id']).where('node_id', '=', nodeId).orderBy('address').execute();
  return rows.map((r) => ({ id: r.id, address: bareAddress(r.address), state: r.state, providerFloatingIpId: r.provider_floating_ip_id }));
}

function planOrRefuse(name: string, nodeId: string, ips: NodeIpFacts[]): NodeRetirementPlan {
  const plan = planNodeRetirement(ips);
  if (plan.ok) return plan.value;
  const list = plan.error.holding.map((h) => `${h.address} (${h.state})`).join(', ');
  throw conflict(`node ${name} still holds IPs that are not retired: ${list}; retire them first (POST /v1/ips/{ip_id}/retire-from-provider, or PATCH /v1/ips/{ip_id} to retired)`, {
    node_id: nodeId,
    ips: plan.error.holding,
  });
}

export async function retireNodeFromProvider(ctx: AppContext, caller: Caller, nodeId: string, opts: { force?: boolean | undefined } = {}): Promise<RetiredNode> {
  // 1. what there is, and whether it may go
  const node = await ctx.db.selectFrom('nodes').select(['id', 'name', 'provider_project_id', 'provider_server_id', 'queued_messages', 'queued_messages_at']).where('id', '=', nodeId).executeTakeFirst();
  if (!node) throw notFound('node', nodeId);
  if (!node.provider_project_id || !node.provider_server_id) {
    throw new AppError('PRECONDITION_FAILED', `node ${node.name} was not bought through a provider project; DELETE /v1/nodes/${nodeId} removes it`);
  }
  const projectId = node.provider_project_id;
  const serverId = node.provider_server_id;
  const plan = planOrRefuse(node.name, nodeId, await nodeIps(ctx.db, nodeId));
  // its spool goes with the server: mail kumod accepted must have left first
  const force = opts.force === true;
  const queued = node.queued_messages === null || node.queued_messages_at === null ? null : { count: Number(node.queued_messages), atMs: node.queued_messages_at.getTime() };
  const deletable = mayDeleteServer({ queued, nowMs: ctx.now().getTime(), force });
  if (!deletable.ok) {
    const e = deletable.error;
    const why =
      e.reason === 'holds_messages'
        ? `it still holds ${e.count} message${e.count === 1 ? '' : 's'}: with its IPs retired nothing new reaches it, so wait until it has delivered or bounced them`
        : e.reason === 'not_reported'
          ? 'it has not reported how many messages it holds (a runtime older than this control plane, or it never pulled)'
          : `its last report of the messages it holds is ${Math.round(e.ageMs / 1000)} s old: it is not pulling`;
    throw conflict(`node ${node.name} keeps its server: ${why}. {"force": true} deletes it anyway, and whatever it holds with it`, { reason: e.reason, ...(e.reason === 'holds_messages' ? { queued_messages: e.count } : {}) });
  }
  // an IP purchase for the node that is unfinished (crashed after the create, or still running) may
  // hold a Floating IP under its key that no row knows of, billed once the server is gone: give the
  // purchases up first (a run still going then records nothing and releases what it bought), and
  // sweep their keys below
  const pendingIpIntents = await inTransaction(ctx.db, async (tx) => {
    const rows = await tx
      .updateTable('provisioning_intents')
      .set({ status: 'cancelled', updated_at: ctx.now() })
      .where('kind', '=', 'floating_ip')
      .where('node_id', '=', nodeId)
      .where('status', '=', 'pending')
      .returning(['id', 'idempotency_key'])
      .execute();
    for (const r of rows) {
      await writeAudit(tx, caller, { action: 'provisioning_intent.cancel', targetType: 'provisioning_intent', targetId: r.id, details: { kind: 'floating_ip', node_id: nodeId, idempotency_key: r.idempotency_key, reason: 'its node is being retired from the provider' } });
    }
    return rows;
  });
  const { provider } = await providerOf(ctx, ctx.db, projectId);

  // 2. the provider side: IPs first, so none is left behind if the server delete fails
  const { released, serverDeleted } = await guarded(ctx, caller, projectId, async () => {
    const out: ReleasedIp[] = [];
    for (const r of plan.release) {
      out.push({ ip_id: r.ipId, address: r.address, provider_floating_ip_id: r.floatingIpId, released: await releaseFloatingIp(provider, r.floatingIpId, r.address) });
    }
    for (const intent of pendingIpIntents) {
      for (const f of await heldUnderKey(provider, 'floating_ip', intent.idempotency_key)) {
        out.push({ ip_id: null, address: f.ip ?? '', provider_floating_ip_id: f.id, released: await releaseFloatingIp(provider, f.id, f.ip ?? '') });
      }
    }
    return { released: out, serverDeleted: await deleteServerAndWait(provider, serverId) };
  });

  // 3. the rows, once nothing is billed any more
  const removed = await inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('nodes').select(['id', 'name', 'region', 'public_address', 'provider_server_id']).where('id', '=', nodeId).forUpdate().executeTakeFirst();
    if (!before) throw notFound('node', nodeId);
    // an IP added to the node while the provider calls ran: the server is gone, but the operator must
    // retire that IP before its row may go
    planOrRefuse(node.name, nodeId, await nodeIps(tx, nodeId));
    // an IP purchase begun meanwhile would lose its intent with the node (ON DELETE CASCADE) and its
    // Floating IP with it: this run stops, the next one gives that purchase up and sweeps its key
    const begun = await tx.selectFrom('provisioning_intents').select('idempotency_key').where('kind', '=', 'floating_ip').where('node_id', '=', nodeId).where('status', '=', 'pending').execute();
    if (begun.length) throw conflict(`an IP purchase for node ${node.name} began while it was being retired (${begun.map((b) => b.idempotency_key).join(', ')}): run the retire again`, { intents: begun.map((b) => b.idempotency_key) });
    // ip_addresses.node_id is NOT NULL and RESTRICT, so the retired rows cannot outlive the node; their
    // history stays where it is kept for good: the audit log (ip.delete below carries each row),
    // delivery_events (node_id becomes NULL, the egress source name stays) and tenant placements'
    // shards (address by value). The node's provisioning intents go with it (ON DELETE CASCADE; the
    // floating_ip kind needs its node_id), their story being in the ip.provision audit entries; the
    // server intent is keyed by node name and stays.
    const ipRows = await tx.deleteFrom('ip_addresses').where('node_id', '=', nodeId).returning(['id', 'address', 'state', 'rdns_name', 'provider_floating_ip_id', 'monthly_cost_usd']).execute();
    for (const ip of ipRows) {
      await writeAudit(tx, caller, {
        action: 'ip.delete',
        targetType: 'ip_address',
        targetId: ip.id,
        details: { before: { address: bareAddress(ip.address), node_id: nodeId, state: ip.state, rdns_name: ip.rdns_name, provider_floating_ip_id: ip.provider_floating_ip_id, monthly_cost_usd: ip.monthly_cost_usd === null ? null : Number(ip.monthly_cost_usd) }, reason: 'node retired from its provider' },
      });
    }
    for (const r of released) {
      await writeAudit(tx, caller, { action: 'ip.provider_release', targetType: 'ip_address', targetId: r.ip_id, details: { provider_floating_ip_id: r.provider_floating_ip_id, address: r.address, released: r.released, node_id: nodeId } });
    }
    await tx.deleteFrom('nodes').where('id', '=', nodeId).execute();
    await writeAudit(tx, caller, {
      action: 'node.retire_from_provider',
      targetType: 'node',
      targetId: nodeId,
      details: {
        before: { name: before.name, region: before.region, public_address: before.public_address, provider_project_id: projectId, provider_server_id: before.provider_server_id },
        server_deleted: serverDeleted,
        forced: force,
        queued_messages: queued,
        released_ips: released,
        removed_ip_ids: ipRows.map((r) => r.id),
      },
    });
    return ipRows.map((r) => r.id);
  });
  return { node_id: nodeId, name: node.name, provider_server_id: serverId, server_deleted: serverDeleted, released_ips: released, removed_ip_ids: removed };
}
