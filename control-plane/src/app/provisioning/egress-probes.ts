/**
 * A node's own port-25 probe (mta-nodes/bin/kcp-egress-probe, on a timer), posted with its node token:
 * load the node and its project -> the verdict from what it saw (domain/provisioning/egress.ts
 * probeVerdict) -> the node's probe and the project's next state, in one transaction.
 *
 * Probes arrive every few minutes from every node, so only a change is audited (the node's verdict or
 * the project's state); the latest detail is always on the node for the operator.
 */
import type { AppContext } from '../../context.js';
import { inTransaction, type Tx } from '../../adapters/pg/database.js';
import { nextEgressState, probeVerdict, type Port25Egress, type ProbeOutcome, type ProbeVerdict } from '../../domain/provisioning/egress.js';
import { notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { iso } from '../views.js';

export interface ProbeAttempt {
  /** the MX host name tried */
  host: string;
  port: number;
  /** the address connected to, when the name resolved */
  address?: string | undefined;
  outcome: ProbeOutcome;
  /** the node's words for it: the greeting's first line, the socket error */
  detail?: string | undefined;
}

export interface NodeProbeResult {
  node_id: string;
  verdict: ProbeVerdict;
  /** the node's standing probe after this one (an inconclusive probe leaves it as it was) */
  port25_probe: { connected: boolean; at: string } | null;
  /** the node's provider project's egress after it; null for a node registered by hand */
  project_egress: Port25Egress | null;
}

const DETAIL_MAX = 1000;

/** One line per attempt, for the operator: `greeted gmail-smtp-in.l.google.com:25 [142.250.1.26] 220 mx.google.com ESMTP`. */
export function describeAttempts(attempts: readonly ProbeAttempt[]): string {
  const text = attempts.map((a) => [a.outcome, `${a.host}:${a.port}`, a.address ? `[${a.address}]` : null, a.detail ?? null].filter((x) => x !== null).join(' ')).join('; ');
  return text.length <= DETAIL_MAX ? text : `${text.slice(0, DETAIL_MAX - 1)}…`;
}

/**
 * Store a probe on its node and move the project's egress (nextEgressState). `connected` is the
 * verdict of a conclusive probe; the operator's recorded probe (provider-projects.ts) comes through
 * here too, so both kinds keep the one rule.
 */
export async function applyNodeProbe(
  tx: Tx,
  ctx: AppContext,
  caller: Caller,
  nodeId: string,
  probe: { connected: boolean | null; detail: string | null; audit: 'always' | 'on_change'; note?: string | undefined },
): Promise<{ before: boolean | null; projectBefore: Port25Egress | null; projectAfter: Port25Egress | null; at: Date | null }> {
  const now = ctx.now();
  // project before node, the order recordEgressEvent takes them in: a node's probe and an operator's
  // event at the same moment then queue instead of deadlocking. FOR NO KEY UPDATE, because nothing
  // here changes a key: the foreign-key checks of an IP being bought for the node (KEY SHARE on node
  // and project) go on beside it instead of waiting in a cycle. (A node's project never changes, so
  // reading it unlocked first is safe.)
  const owner = await tx.selectFrom('nodes').select('provider_project_id').where('id', '=', nodeId).executeTakeFirst();
  if (!owner) throw notFound('node', nodeId);
  const projectId = owner.provider_project_id;
  const project = projectId === null ? null : await tx.selectFrom('provider_projects').select('port25_egress').where('id', '=', projectId).forNoKeyUpdate().executeTakeFirstOrThrow();
  const node = await tx.selectFrom('nodes').select(['port25_probe_ok', 'port25_probe_at']).where('id', '=', nodeId).forNoKeyUpdate().executeTakeFirstOrThrow();
  await tx
    .updateTable('nodes')
    .set({ ...(probe.connected === null ? {} : { port25_probe_ok: probe.connected, port25_probe_at: now }), port25_probe_detail: probe.detail, updated_at: now })
    .where('id', '=', nodeId)
    .execute();
  const projectBefore = project?.port25_egress ?? null;
  const projectAfter = projectBefore === null || probe.connected === null ? projectBefore : nextEgressState(projectBefore, { kind: 'probe', connected: probe.connected });
  if (projectAfter !== projectBefore) {
    await tx.updateTable('provider_projects').set({ port25_egress: projectAfter!, port25_changed_at: now, updated_at: now }).where('id', '=', projectId!).execute();
  }
  const changed = (probe.connected !== null && probe.connected !== node.port25_probe_ok) || projectAfter !== projectBefore;
  if (probe.audit === 'always' || changed) {
    await writeAudit(tx, caller, {
      action: 'node.egress_probe',
      targetType: 'node',
      targetId: nodeId,
      details: {
        connected: probe.connected,
        before: node.port25_probe_ok,
        ...(projectId !== null ? { provider_project_id: projectId, project_before: projectBefore, project_after: projectAfter } : {}),
        ...(probe.detail !== null ? { detail: probe.detail } : {}),
        ...(probe.note !== undefined ? { note: probe.note } : {}),
      },
    });
  }
  return { before: node.port25_probe_ok, projectBefore, projectAfter, at: probe.connected === null ? node.port25_probe_at : now };
}

/** `POST /v1/nodes/{id}/egress-probe`: what the node saw, judged here. */
export async function recordNodeProbe(ctx: AppContext, nodeId: string, requestId: string | null, attempts: readonly ProbeAttempt[]): Promise<NodeProbeResult> {
  const verdict = probeVerdict(attempts.map((a) => a.outcome));
  const caller: Caller = { actor: { kind: 'node', nodeId }, requestId };
  const connected = verdict === 'inconclusive' ? null : verdict === 'connected';
  return inTransaction(ctx.db, async (tx) => {
    const r = await applyNodeProbe(tx, ctx, caller, nodeId, { connected, detail: describeAttempts(attempts), audit: 'on_change' });
    const ok = connected ?? r.before;
    return { node_id: nodeId, verdict, port25_probe: ok === null || r.at === null ? null : { connected: ok, at: iso(r.at) }, project_egress: r.projectAfter };
  });
}
