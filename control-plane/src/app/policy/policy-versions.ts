/**
 * Policy versions per node: publish (one canary node, or the fleet), serve to the node with ETag/304,
 * roll back, list, diff. After a publish each node is asked to reload (kumod's bump-config-epoch);
 * a node that cannot be reached still picks the version up at its next pull.
 */
import { sql, type Updateable } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction, type Db, type Tx } from '../../adapters/pg/database.js';
import type { NodesTable } from '../../adapters/pg/tables.js';
import { nodePolicyVerdict, type NodePolicyState, type NodeReport, type RunningCopy } from '../../domain/policy/node-policy-state.js';
import { bumpConfigEpoch, type AdminCallResult } from '../../adapters/http-out/kumod-admin.js';
import { AppError, notFound } from '../../domain/shared/errors.js';
import { unifiedDiff } from '../../render/line-diff.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { iso, isoOrNull } from '../views.js';
import { renderFleet, type RenderedNode } from './fleet-render.js';

export interface VersionView {
  id: string;
  node_id: string;
  version: number;
  content_sha256: string;
  model_sha256: string;
  signature: string;
  created_at: string;
  published_at: string | null;
  rolled_back_at: string | null;
  current: boolean;
}

type VersionRow = { id: string; node_id: string; version: number; content_sha256: string; model_sha256: string; signature: string; created_at: Date; published_at: Date | null; rolled_back_at: Date | null };

const view = (r: VersionRow, currentId: string | null): VersionView => ({
  id: String(r.id),
  node_id: r.node_id,
  version: r.version,
  content_sha256: r.content_sha256,
  model_sha256: r.model_sha256,
  signature: r.signature,
  created_at: iso(r.created_at),
  published_at: isoOrNull(r.published_at),
  rolled_back_at: isoOrNull(r.rolled_back_at),
  current: currentId !== null && String(r.id) === currentId,
});

/** The version a node should run: the newest published one that was not rolled back. */
async function currentVersion(ctx: AppContext, nodeId: string) {
  return ctx.db
    .selectFrom('policy_versions')
    .selectAll()
    .where('node_id', '=', nodeId)
    .where('published_at', 'is not', null)
    .where('rolled_back_at', 'is', null)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export interface PublishResult {
  node_id: string;
  node: string;
  version: number;
  content_sha256: string;
  changed: boolean;
  reload: AdminCallResult | null;
}

/**
 * A new version of a node's module: the next number, signed, published at once or (a rollout's
 * version for a node that is not a canary) held until promotion. One writer per node at a time.
 */
export async function writeVersion(ctx: AppContext, tx: Tx, node: RenderedNode, opts: { publishedAt: Date | null; rolloutId: string | null }): Promise<number> {
  await sql`SELECT 1 FROM nodes WHERE id = ${node.nodeId} FOR UPDATE`.execute(tx);
  const last = await tx.selectFrom('policy_versions').select((eb) => eb.fn.max<number>('version').as('v')).where('node_id', '=', node.nodeId).executeTakeFirst();
  const version = (last?.v ?? 0) + 1;
  await tx
    .insertInto('policy_versions')
    .values({
      node_id: node.nodeId,
      version,
      content_sha256: node.contentSha256,
      model_sha256: node.modelSha256,
      lua_text: node.text,
      signature: ctx.policySigner.sign(node.text),
      safety: JSON.stringify(node.safety),
      created_at: ctx.now(),
      published_at: opts.publishedAt,
      rollout_id: opts.rolloutId,
    })
    .execute();
  return version;
}

/**
 * Render and publish for the given nodes (all nodes when `nodeIds` is empty). A node whose rendered
 * module equals its current version keeps it (no new version, no reload). While the autopilot rolls
 * a change out, a hand publish would race it: pause, skip or force the rollout instead.
 */
export async function publishPolicy(ctx: AppContext, caller: Caller, nodeIds: string[]): Promise<PublishResult[]> {
  const active = await ctx.db.selectFrom('policy_rollouts').select(['id', 'state']).where('finished_at', 'is', null).executeTakeFirst();
  if (active) throw new AppError('CONFLICT', `rollout ${active.id} is in progress (${active.state}): pause the autopilot, or skip or force the rollout, before publishing by hand`, { context: { rollout_id: String(active.id) } });
  const { nodes } = await renderFleet(ctx.db, ctx.config.policy.dkimKeyDir, nodeIds.length > 0 ? nodeIds : null);
  if (nodeIds.length > 0 && nodes.length !== new Set(nodeIds).size) throw notFound('node', nodeIds.filter((id) => !nodes.some((n) => n.nodeId === id)).join(', '));
  const adminUrls = new Map((await ctx.db.selectFrom('nodes').select(['id', 'admin_url']).execute()).map((n) => [n.id, n.admin_url]));
  const now = ctx.now();
  const results: PublishResult[] = [];
  for (const node of nodes) {
    const result: PublishResult = await inTransaction(ctx.db, async (tx): Promise<PublishResult> => {
      const current = await tx
        .selectFrom('policy_versions')
        .select(['id', 'version', 'content_sha256'])
        .where('node_id', '=', node.nodeId)
        .where('published_at', 'is not', null)
        .where('rolled_back_at', 'is', null)
        .orderBy('version', 'desc')
        .executeTakeFirst();
      if (current && current.content_sha256 === node.contentSha256) {
        return { node_id: node.nodeId, node: node.name, version: current.version, content_sha256: node.contentSha256, changed: false, reload: null };
      }
      const version = await writeVersion(ctx, tx, node, { publishedAt: now, rolloutId: null });
      await writeAudit(tx, caller, { action: 'policy.publish', targetType: 'node', targetId: node.nodeId, details: { version, content_sha256: node.contentSha256, model_sha256: node.modelSha256, previous: current?.version ?? null } });
      return { node_id: node.nodeId, node: node.name, version, content_sha256: node.contentSha256, changed: true, reload: null };
    });
    const adminUrl = adminUrls.get(node.nodeId);
    if (result.changed && adminUrl) result.reload = await bumpConfigEpoch(adminUrl, ctx.config.policy.bumpTimeoutMs);
    ctx.metrics.policyPublishes.inc({ result: !result.changed ? 'unchanged' : result.reload && !result.reload.ok ? 'reload_failed' : 'changed' });
    results.push(result);
  }
  const reloads = results.filter((r) => r.reload);
  if (reloads.length > 0) {
    await writeAudit(ctx.db, caller, { action: 'policy.reload', targetType: 'node', targetId: null, details: { results: reloads.map((r) => ({ node: r.node, version: r.version, ...r.reload })) } });
  }
  return results;
}

/** Withdraw the node's current version; the previous published one becomes current again. */
export async function rollbackPolicy(ctx: AppContext, caller: Caller, nodeId: string): Promise<PublishResult> {
  const node = await ctx.db.selectFrom('nodes').select(['id', 'name', 'admin_url']).where('id', '=', nodeId).executeTakeFirst();
  if (!node) throw notFound('node', nodeId);
  const result = await inTransaction(ctx.db, async (tx) => {
    await sql`SELECT 1 FROM nodes WHERE id = ${nodeId} FOR UPDATE`.execute(tx);
    const live = await tx
      .selectFrom('policy_versions')
      .select(['id', 'version', 'content_sha256'])
      .where('node_id', '=', nodeId)
      .where('published_at', 'is not', null)
      .where('rolled_back_at', 'is', null)
      .orderBy('version', 'desc')
      .limit(2)
      .execute();
    if (live.length < 2) throw new AppError('CONFLICT', 'there is no earlier published version to roll back to');
    await tx.updateTable('policy_versions').set({ rolled_back_at: ctx.now() }).where('id', '=', live[0]!.id).execute();
    await writeAudit(tx, caller, { action: 'policy.rollback', targetType: 'node', targetId: nodeId, details: { from: live[0]!.version, to: live[1]!.version } });
    return { node_id: nodeId, node: node.name, version: live[1]!.version, content_sha256: live[1]!.content_sha256, changed: true, reload: null as AdminCallResult | null };
  });
  if (node.admin_url) result.reload = await bumpConfigEpoch(node.admin_url, ctx.config.policy.bumpTimeoutMs);
  return result;
}

export type ServedPolicy = { status: 200; text: string; etag: string; version: number; signature: string; modelSha256: string } | { status: 304; etag: string; version: number };

/**
 * What GET /v1/nodes/{id}/policy answers. Records what was served and, from the node's own report in
 * the same request, what it runs: the two differ until the node has verified, installed and loaded
 * the module, which only the node can say.
 */
export async function servePolicy(ctx: AppContext, node: { id: string }, ifNoneMatch: string | undefined, report: NodeReport | null): Promise<ServedPolicy> {
  // the module itself (hundreds of KiB) is read only when it is sent: most pulls end in 304
  const v = await ctx.db
    .selectFrom('policy_versions')
    .select(['id', 'version', 'content_sha256', 'model_sha256', 'signature'])
    .where('node_id', '=', node.id)
    .where('published_at', 'is not', null)
    .where('rolled_back_at', 'is', null)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!v) {
    // nothing to serve, but what the node says about the mail it holds still counts
    const now = ctx.now();
    await ctx.db.updateTable('nodes').set({ last_pull_at: now, last_seen_at: now, ...queueReport(report, now) }).where('id', '=', node.id).execute();
    throw new AppError('NOT_FOUND', 'no policy has been published for this node yet');
  }
  await recordPull(ctx, node.id, v, report);
  const etag = `"${v.content_sha256}"`;
  const tags = (ifNoneMatch ?? '').split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (tags.includes(etag) || tags.includes('*')) return { status: 304, etag, version: v.version };
  const { lua_text } = await ctx.db.selectFrom('policy_versions').select('lua_text').where('id', '=', v.id).executeTakeFirstOrThrow();
  return { status: 200, text: lua_text, etag, version: v.version, signature: v.signature, modelSha256: v.model_sha256 };
}

/** The columns a pull's queue count sets (none when the node did not say). */
const queueReport = (report: NodeReport | null, now: Date) => (report?.queuedMessages == null ? {} : { queued_messages: report.queuedMessages, queued_messages_at: now });

async function recordPull(ctx: AppContext, nodeId: string, served: { id: string; content_sha256: string }, report: NodeReport | null): Promise<void> {
  const now = ctx.now();
  const before = await ctx.db
    .selectFrom('nodes')
    .select(['served_policy_version_id', 'applied_sha256', 'running_copy', 'policy_error', 'last_pull_at'])
    .where('id', '=', nodeId)
    .executeTakeFirstOrThrow();
  const set: Updateable<NodesTable> = {};
  if (String(before.served_policy_version_id) !== String(served.id)) Object.assign(set, { served_policy_version_id: served.id, served_at: now });
  if (report) {
    if (report.runningSha256 !== before.applied_sha256) {
      // the newest version with that content: a rollback serves an older version's exact bytes again
      const known = report.runningSha256
        ? await ctx.db.selectFrom('policy_versions').select('id').where('node_id', '=', nodeId).where('content_sha256', '=', report.runningSha256).orderBy('version', 'desc').limit(1).executeTakeFirst()
        : undefined;
      Object.assign(set, { applied_sha256: report.runningSha256, applied_policy_version_id: known?.id ?? null, applied_at: now });
    }
    if (report.copy !== before.running_copy) set.running_copy = report.copy;
    // an error stands until the node runs what it was given
    const error = report.runningSha256 === served.content_sha256 ? null : report.installError;
    if (error !== null && error !== before.policy_error) Object.assign(set, { policy_error: error, policy_error_at: now });
    if (error === null && before.policy_error !== null && report.runningSha256 === served.content_sha256) Object.assign(set, { policy_error: null, policy_error_at: null });
  }
  // a pull every few seconds need not be a write every few seconds: one a second is exact enough
  if (Object.keys(set).length === 0 && before.last_pull_at && now.getTime() - before.last_pull_at.getTime() < 1000) return;
  // the queue report rides along with the write, never causes one: its age is the pull's, to a second
  await ctx.db
    .updateTable('nodes')
    .set({ ...set, last_pull_at: now, last_seen_at: now, ...queueReport(report, now) })
    .where('id', '=', nodeId)
    .execute();
}

export async function listVersions(ctx: AppContext, nodeId: string, limit: number): Promise<VersionView[]> {
  const node = await ctx.db.selectFrom('nodes').select('id').where('id', '=', nodeId).executeTakeFirst();
  if (!node) throw notFound('node', nodeId);
  const current = await currentVersion(ctx, nodeId);
  const rows = await ctx.db
    .selectFrom('policy_versions')
    .select(['id', 'node_id', 'version', 'content_sha256', 'model_sha256', 'signature', 'created_at', 'published_at', 'rolled_back_at'])
    .where('node_id', '=', nodeId)
    .orderBy('version', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => view(r as unknown as VersionRow, current ? String(current.id) : null));
}

export async function versionText(ctx: AppContext, nodeId: string, version: number): Promise<string> {
  const row = await ctx.db.selectFrom('policy_versions').select('lua_text').where('node_id', '=', nodeId).where('version', '=', version).executeTakeFirst();
  if (!row) throw notFound('policy version', `${nodeId}#${version}`);
  return row.lua_text;
}

export async function diffVersions(ctx: AppContext, nodeId: string, from: number, to: number): Promise<string> {
  const [a, b] = await Promise.all([versionText(ctx, nodeId, from), versionText(ctx, nodeId, to)]);
  return unifiedDiff(a, b, { from: `v${from}`, to: `v${to}` });
}

export interface NodePolicyStatus {
  node_id: string;
  node: string;
  canary: boolean;
  state: NodePolicyState;
  fallback: boolean;
  reason: string;
  current_version: number | null;
  served_version: number | null;
  served_at: string | null;
  applied_version: number | null;
  applied_sha256: string | null;
  applied_at: string | null;
  running_copy: RunningCopy | null;
  install_error: string | null;
  install_error_at: string | null;
  last_pull_at: string | null;
  up_to_date: boolean;
}

/** Every node: what it should run, what it was served, what it runs, and the verdict on that. */
export async function fleetPolicyStatus(ctx: AppContext, db: Db | Tx = ctx.db): Promise<NodePolicyStatus[]> {
  const { rows } = await sql<{
    id: string; name: string; canary: boolean; last_pull_at: Date | null; served_at: Date | null; applied_at: Date | null; applied_sha256: string | null;
    running_copy: RunningCopy | null; policy_error: string | null; policy_error_at: Date | null; served_version: number | null; applied_version: number | null;
    current_version: number | null; current_sha256: string | null; current_published_at: Date | null;
  }>`
    SELECT n.id, n.name, n.canary, n.last_pull_at, n.served_at, n.applied_at, n.applied_sha256, n.running_copy, n.policy_error, n.policy_error_at,
           s.version AS served_version, a.version AS applied_version,
           c.version AS current_version, c.content_sha256 AS current_sha256, c.published_at AS current_published_at
    FROM nodes n
    LEFT JOIN policy_versions s ON s.id = n.served_policy_version_id
    LEFT JOIN policy_versions a ON a.id = n.applied_policy_version_id
    LEFT JOIN LATERAL (
      SELECT version, content_sha256, published_at FROM policy_versions v
      WHERE v.node_id = n.id AND v.published_at IS NOT NULL AND v.rolled_back_at IS NULL
      ORDER BY version DESC LIMIT 1
    ) c ON true
    ORDER BY n.name`.execute(db);
  const now = ctx.now();
  return rows.map((r) => {
    const verdict = nodePolicyVerdict({
      current: r.current_version === null ? null : { version: r.current_version, contentSha256: r.current_sha256!, publishedAt: r.current_published_at! },
      applied: { sha256: r.applied_sha256, at: r.applied_at, copy: r.running_copy },
      lastPullAt: r.last_pull_at,
      installError: r.policy_error,
      now,
      staleMs: ctx.config.policy.nodeStaleMs,
    });
    return {
      node_id: r.id,
      node: r.name,
      canary: r.canary,
      state: verdict.state,
      fallback: verdict.fallback,
      reason: verdict.reason,
      current_version: r.current_version,
      served_version: r.served_version,
      served_at: isoOrNull(r.served_at),
      applied_version: r.applied_version,
      applied_sha256: r.applied_sha256,
      applied_at: isoOrNull(r.applied_at),
      running_copy: r.running_copy,
      install_error: r.policy_error,
      install_error_at: isoOrNull(r.policy_error_at),
      last_pull_at: isoOrNull(r.last_pull_at),
      up_to_date: verdict.state === 'up_to_date',
    };
  });
}
