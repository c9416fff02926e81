/**
 * The policy autopilot: each tick loads the fleet's render, the active rollout and the canaries'
 * records, asks the pure rules (domain/policy/rollout.ts) for the one step to take, and writes it,
 * audited. It runs as a worker job under the job lock, and every step is a row change inside that
 * job's transaction: a crash half way leaves the previous step, which the next tick continues.
 *
 * Nodes pull, so publishing is writing a version; a node picks it up at its next pull and reports
 * what it runs, which is what the rules read as "applied".
 */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { Selectable } from 'kysely';
import type { PolicyRolloutsTable } from '../../adapters/pg/tables.js';
import {
  decideRollout,
  NO_RECORDS,
  type ActiveRollout,
  type CanaryHealth,
  type HealthVerdict,
  type Pending,
  type RecordCounts,
  type RolloutStep,
} from '../../domain/policy/rollout.js';
import { AppError, notFound } from '../../domain/shared/errors.js';
import { systemCaller, type Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { readSettings } from '../settings.js';
import { isoOrNull, iso } from '../views.js';
import { FleetRenderCache, renderFleet, type RenderedNode } from './fleet-render.js';
import { writeVersion } from './policy-versions.js';

const AUTOPILOT = systemCaller('policy-autopilot');
type RolloutRow = Selectable<PolicyRolloutsTable>;

async function lockAutopilot(tx: Tx) {
  return tx.selectFrom('policy_autopilot').selectAll().forUpdate().executeTakeFirstOrThrow();
}

async function activeRolloutRow(db: Db | Tx): Promise<RolloutRow | undefined> {
  return db.selectFrom('policy_rollouts').selectAll().where('finished_at', 'is', null).orderBy('id', 'desc').executeTakeFirst();
}

/** The rollout with, per node, whether it reports running the version the rollout gave it. */
async function loadActive(db: Db | Tx, row: RolloutRow): Promise<ActiveRollout> {
  const nodeVersions = row.node_versions as Record<string, number>;
  const ids = Object.keys(nodeVersions);
  const { rows } = ids.length
    ? await sql<{ id: string; name: string; applied_sha256: string | null; policy_error: string | null; policy_error_at: Date | null; content_sha256: string }>`
        SELECT n.id, n.name, n.applied_sha256, n.policy_error, n.policy_error_at, v.content_sha256
        FROM nodes n JOIN policy_versions v ON v.node_id = n.id AND v.rollout_id = ${row.id}
        WHERE n.id = ANY(${ids}::uuid[])
        ORDER BY n.name`.execute(db)
    : { rows: [] };
  const canaries = new Set(row.canary_node_ids);
  return {
    id: String(row.id),
    state: row.state as ActiveRollout['state'],
    urgent: row.urgent,
    renderSha: row.render_sha256,
    createdAt: row.created_at,
    canaryAppliedAt: row.canary_applied_at,
    promotedAt: row.promoted_at,
    nodes: rows.map((r) => ({
      nodeId: r.id,
      name: r.name,
      canary: canaries.has(r.id),
      applied: r.applied_sha256 === r.content_sha256,
      installError: r.policy_error && r.policy_error_at && r.policy_error_at >= row.created_at ? r.policy_error : null,
    })),
  };
}

/** The canaries' delivery records over [from, to), by what happened. */
async function recordCounts(db: Db | Tx, nodeIds: string[], from: Date, to: Date): Promise<RecordCounts> {
  if (nodeIds.length === 0 || to <= from) return NO_RECORDS;
  const { rows } = await sql<{ delivered: string; bounced: string; deferred: string; expired: string; errors: string }>`
    SELECT count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
           count(*) FILTER (WHERE outcome = 'hard_bounce') AS bounced,
           count(*) FILTER (WHERE outcome = 'soft_bounce') AS deferred,
           count(*) FILTER (WHERE outcome = 'expired') AS expired,
           count(*) FILTER (WHERE node_fault) AS errors
    FROM delivery_events
    WHERE node_id = ANY(${nodeIds}::uuid[]) AND occurred_at >= ${from} AND occurred_at < ${to}`.execute(db);
  const r = rows[0]!;
  return { delivered: Number(r.delivered), bounced: Number(r.bounced), deferred: Number(r.deferred), expired: Number(r.expired), errors: Number(r.errors) };
}

/**
 * The canaries' records before the rollout, and since they run it. Nodes before 2025.10.06 stamp
 * records in whole seconds, so both windows meet at the second the canaries applied: a record of that
 * second counts as the new version's (at most a second of the old one's traffic blurs into the soak).
 */
async function canaryHealth(db: Db | Tx, r: ActiveRollout, baselineHours: number, now: Date): Promise<CanaryHealth> {
  const ids = r.nodes.filter((n) => n.canary).map((n) => n.nodeId);
  const second = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
  const soakFrom = second(r.canaryAppliedAt ?? now);
  const [baseline, soak] = await Promise.all([
    recordCounts(db, ids, new Date(second(r.createdAt).getTime() - baselineHours * 3_600_000), second(r.createdAt)),
    recordCounts(db, ids, soakFrom, new Date(now.getTime() + 1)),
  ]);
  return { baseline, soak };
}

export interface TickResult {
  step: RolloutStep['kind'];
  why?: string;
  rollout?: string;
  bootstrapped?: string[];
}

/** One tick of the autopilot, inside the job's transaction. */
export async function autopilotTick(ctx: AppContext, tx: Tx, renders: FleetRenderCache = new FleetRenderCache()): Promise<TickResult> {
  const now = ctx.now();
  const ap = await lockAutopilot(tx);
  const settings = (await readSettings(tx)).policy_rollout;
  const { nodes, render } = await renderFleet(tx, ctx.config.policy.dkimKeyDir, null, renders);
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));

  // a node with no module refuses all mail: its first one goes out at once, canary or not
  const bootstrapped: string[] = [];
  if (!ap.paused) {
    for (const b of render.bootstrap) {
      const node = byId.get(b.nodeId)!;
      const version = await writeVersion(ctx, tx, node, { publishedAt: now, rolloutId: null });
      await writeAudit(tx, AUTOPILOT, { action: 'policy.autopilot.bootstrap', targetType: 'node', targetId: node.nodeId, details: { version, content_sha256: node.contentSha256 } });
      bootstrapped.push(node.name);
    }
  }

  const row = await activeRolloutRow(tx);
  const active = row ? await loadActive(tx, row) : null;
  const health = active?.state === 'soaking' ? await canaryHealth(tx, active, settings.baseline_hours, now) : null;
  const pending: Pending | null = ap.pending_render_sha256 ? { sha: ap.pending_render_sha256, since: ap.pending_since!, changedAt: ap.pending_changed_at! } : null;
  const step = decideRollout({ now, settings, autopilot: { paused: ap.paused, skippedSha: ap.skipped_render_sha256, pending }, render, active, health });
  const result: TickResult = { step: step.kind, ...(bootstrapped.length ? { bootstrapped } : {}) };

  switch (step.kind) {
    case 'idle':
    case 'wait':
      result.why = step.why;
      break;
    case 'track':
      await setPending(tx, step.pending);
      result.why = step.why;
      break;
    case 'start': {
      if (step.supersede) await finishRollout(tx, step.supersede, 'superseded', `an urgent change overtook it: ${step.reasons.join('; ')}`, now);
      const id = await startRollout(ctx, tx, {
        urgent: step.urgent,
        reason: step.reasons.join('; '),
        canaries: step.canaries.map((c) => c.nodeId),
        nodes: step.nodes.map((n) => byId.get(n.nodeId)!),
        renderSha: render.sha,
        now,
      });
      await setPending(tx, null);
      result.rollout = id;
      break;
    }
    case 'canary_applied':
      await tx.updateTable('policy_rollouts').set({ state: 'soaking', canary_applied_at: now }).where('id', '=', active!.id).execute();
      await writeAudit(tx, AUTOPILOT, { action: 'policy.rollout.canary_applied', targetType: 'policy_rollout', targetId: active!.id, details: { canaries: active!.nodes.filter((n) => n.canary).map((n) => n.name) } });
      result.rollout = active!.id;
      break;
    case 'promote':
      await promote(ctx, tx, active!, step.health, step.why, AUTOPILOT);
      result.rollout = active!.id;
      result.why = step.why;
      break;
    case 'rollback':
      await rollBack(ctx, tx, active!, step.why, step.health, now);
      result.rollout = active!.id;
      result.why = step.why;
      break;
    case 'finish':
      await finishRollout(tx, active!.id, 'done', step.outcome, now);
      await writeAudit(tx, AUTOPILOT, { action: 'policy.rollout.done', targetType: 'policy_rollout', targetId: active!.id, details: { outcome: step.outcome, late_nodes: step.laggards } });
      result.rollout = active!.id;
      result.why = step.outcome;
      break;
  }
  return result;
}

async function setPending(tx: Tx, pending: Pending | null): Promise<void> {
  await tx
    .updateTable('policy_autopilot')
    .set({ pending_render_sha256: pending?.sha ?? null, pending_since: pending?.since ?? null, pending_changed_at: pending?.changedAt ?? null })
    .execute();
}

async function startRollout(
  ctx: AppContext,
  tx: Tx,
  r: { urgent: boolean; reason: string; canaries: string[]; nodes: RenderedNode[]; renderSha: string; now: Date },
  caller: Caller = AUTOPILOT,
): Promise<string> {
  const canaries = new Set(r.canaries);
  // no canary (urgent, forced) or nothing beyond the canaries: the whole rollout is published now
  const state = canaries.size === 0 ? 'promoting' : 'canary';
  const inserted = await tx
    .insertInto('policy_rollouts')
    .values({
      state,
      urgent: r.urgent,
      reason: r.reason.slice(0, 2000),
      canary_node_ids: [...canaries],
      node_versions: JSON.stringify({}),
      render_sha256: r.renderSha,
      created_at: r.now,
      promoted_at: state === 'promoting' ? r.now : null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const id = String(inserted.id);
  const versions: Record<string, number> = {};
  for (const node of r.nodes) {
    const publish = state === 'promoting' || canaries.has(node.nodeId);
    versions[node.nodeId] = await writeVersion(ctx, tx, node, { publishedAt: publish ? r.now : null, rolloutId: id });
  }
  await tx.updateTable('policy_rollouts').set({ node_versions: JSON.stringify(versions) }).where('id', '=', id).execute();
  await writeAudit(tx, caller, {
    action: 'policy.rollout.start',
    targetType: 'policy_rollout',
    targetId: id,
    details: { urgent: r.urgent, reason: r.reason, canaries: r.nodes.filter((n) => canaries.has(n.nodeId)).map((n) => n.name), nodes: r.nodes.map((n) => n.name), versions, render_sha256: r.renderSha },
  });
  return id;
}

async function promote(ctx: AppContext, tx: Tx, r: ActiveRollout, health: HealthVerdict | null, why: string, caller: Caller): Promise<void> {
  const now = ctx.now();
  const published = await tx
    .updateTable('policy_versions')
    .set({ published_at: now })
    .where('rollout_id', '=', r.id)
    .where('published_at', 'is', null)
    .returning('node_id')
    .execute();
  await tx
    .updateTable('policy_rollouts')
    .set({ state: 'promoting', promoted_at: now, ...(health ? { health: JSON.stringify(health) } : {}) })
    .where('id', '=', r.id)
    .execute();
  const names = new Map(r.nodes.map((n) => [n.nodeId, n.name]));
  await writeAudit(tx, caller, { action: 'policy.rollout.promote', targetType: 'policy_rollout', targetId: r.id, details: { why, nodes: published.map((p) => names.get(p.node_id) ?? p.node_id), health } });
}

async function rollBack(ctx: AppContext, tx: Tx, r: ActiveRollout, why: string, health: HealthVerdict | null, now: Date): Promise<void> {
  // the rollout's published versions are withdrawn: each node's previous one is current again
  const withdrawn = await tx
    .updateTable('policy_versions')
    .set({ rolled_back_at: now })
    .where('rollout_id', '=', r.id)
    .where('published_at', 'is not', null)
    .where('rolled_back_at', 'is', null)
    .returning(['node_id', 'version'])
    .execute();
  await tx.updateTable('policy_rollouts').set({ state: 'rolled_back', finished_at: now, outcome: why.slice(0, 2000), ...(health ? { health: JSON.stringify(health) } : {}) }).where('id', '=', r.id).execute();
  const names = new Map(r.nodes.map((n) => [n.nodeId, n.name]));
  const rolledBack = withdrawn.map((w) => ({ node: names.get(w.node_id) ?? w.node_id, version: w.version }));
  const reason = `rollout ${r.id} was rolled back: ${why}`.slice(0, 2000);
  // stopped, and this fleet state is not tried again by itself: the next change, or an operator, moves on
  await tx.updateTable('policy_autopilot').set({ paused: true, paused_at: now, paused_reason: reason, skipped_render_sha256: r.renderSha }).execute();
  const incident = await tx
    .insertInto('reputation_incidents')
    .values({
      kind: 'policy_rollout',
      rollout_id: r.id,
      pool_id: null,
      detected_at: now,
      window_start: r.createdAt,
      window_end: now > r.createdAt ? now : new Date(r.createdAt.getTime() + 1),
      level: 'pause',
      assessment: JSON.stringify({ why, health }),
      actions: JSON.stringify([{ action: 'rolled_back', versions: rolledBack }, { action: 'paused_autopilot' }]),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await writeAudit(tx, AUTOPILOT, { action: 'policy.rollout.rollback', targetType: 'policy_rollout', targetId: r.id, details: { why, rolled_back: rolledBack, incident_id: String(incident.id), health } });
  ctx.log.warn({ rollout: r.id, incident: String(incident.id), why }, 'policy rollout rolled back; the autopilot is paused');
}

async function finishRollout(tx: Tx, id: string, state: 'done' | 'superseded' | 'skipped', outcome: string, now: Date): Promise<void> {
  await tx.updateTable('policy_rollouts').set({ state, finished_at: now, outcome: outcome.slice(0, 2000) }).where('id', '=', id).where('finished_at', 'is', null).execute();
}

// ---------------------------------------------------------------------------------------------------
// What operators do and see
// ---------------------------------------------------------------------------------------------------

export interface RolloutView {
  id: string;
  state: RolloutRow['state'];
  urgent: boolean;
  reason: string;
  canary_nodes: string[];
  /** runs_it: the node reports it runs the version this rollout gave it (now, not when the rollout ended) */
  nodes: { node_id: string; node: string; version: number; canary: boolean; runs_it: boolean }[];
  render_sha256: string;
  health: unknown;
  created_at: string;
  canary_applied_at: string | null;
  promoted_at: string | null;
  finished_at: string | null;
  outcome: string | null;
}

async function rolloutView(db: Db | Tx, row: RolloutRow): Promise<RolloutView> {
  const a = await loadActive(db, row);
  const versions = row.node_versions as Record<string, number>;
  return {
    id: String(row.id),
    state: row.state,
    urgent: row.urgent,
    reason: row.reason,
    canary_nodes: a.nodes.filter((n) => n.canary).map((n) => n.name),
    nodes: a.nodes.map((n) => ({ node_id: n.nodeId, node: n.name, version: versions[n.nodeId]!, canary: n.canary, runs_it: n.applied })),
    render_sha256: row.render_sha256,
    health: row.health ?? null,
    created_at: iso(row.created_at),
    canary_applied_at: isoOrNull(row.canary_applied_at),
    promoted_at: isoOrNull(row.promoted_at),
    finished_at: isoOrNull(row.finished_at),
    outcome: row.outcome,
  };
}

/** Newest first; the cursor is the last id of the previous page. */
export async function listRollouts(ctx: AppContext, limit: number, cursor: string | undefined): Promise<{ items: RolloutView[]; next_cursor: string | null }> {
  if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) throw new AppError('VALIDATION_FAILED', 'cursor is not one this API issued', { fields: [{ path: 'query.cursor', message: 'invalid cursor' }] });
  let q = ctx.db.selectFrom('policy_rollouts').selectAll().orderBy('id', 'desc').limit(limit + 1);
  if (cursor) q = q.where('id', '<', cursor);
  const rows = await q.execute();
  const items = await Promise.all(rows.slice(0, limit).map((r) => rolloutView(ctx.db, r)));
  return { items, next_cursor: rows.length > limit ? items.at(-1)!.id : null };
}

export async function getRollout(ctx: AppContext, id: string): Promise<RolloutView> {
  if (!/^\d{1,18}$/.test(id)) throw notFound('policy rollout', id);
  const row = await ctx.db.selectFrom('policy_rollouts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('policy rollout', id);
  return rolloutView(ctx.db, row);
}

export interface AutopilotView {
  paused: boolean;
  paused_at: string | null;
  paused_reason: string | null;
  skipped_render_sha256: string | null;
  pending: { render_sha256: string; since: string; changed_at: string } | null;
  active_rollout: RolloutView | null;
}

export async function autopilotView(ctx: AppContext): Promise<AutopilotView> {
  const ap = await ctx.db.selectFrom('policy_autopilot').selectAll().executeTakeFirstOrThrow();
  const row = await activeRolloutRow(ctx.db);
  return {
    paused: ap.paused,
    paused_at: isoOrNull(ap.paused_at),
    paused_reason: ap.paused_reason,
    skipped_render_sha256: ap.skipped_render_sha256,
    pending: ap.pending_render_sha256 ? { render_sha256: ap.pending_render_sha256, since: iso(ap.pending_since!), changed_at: iso(ap.pending_changed_at!) } : null,
    active_rollout: row ? await rolloutView(ctx.db, row) : null,
  };
}

async function inAutopilotTx<T>(ctx: AppContext, fn: (tx: Tx, ap: Awaited<ReturnType<typeof lockAutopilot>>) => Promise<T>): Promise<T> {
  return ctx.db.transaction().execute(async (tx) => fn(tx, await lockAutopilot(tx)));
}

export async function pauseAutopilot(ctx: AppContext, caller: Caller, reason: string): Promise<AutopilotView> {
  await inAutopilotTx(ctx, async (tx, ap) => {
    if (ap.paused) return;
    await tx.updateTable('policy_autopilot').set({ paused: true, paused_at: ctx.now(), paused_reason: reason }).execute();
    await writeAudit(tx, caller, { action: 'policy.autopilot.pause', targetType: 'policy_autopilot', targetId: null, details: { reason } });
  });
  return autopilotView(ctx);
}

export async function resumeAutopilot(ctx: AppContext, caller: Caller): Promise<AutopilotView> {
  await inAutopilotTx(ctx, async (tx, ap) => {
    if (!ap.paused) return;
    await tx.updateTable('policy_autopilot').set({ paused: false, paused_at: null, paused_reason: null }).execute();
    await writeAudit(tx, caller, { action: 'policy.autopilot.resume', targetType: 'policy_autopilot', targetId: null, details: { was: ap.paused_reason } });
  });
  return autopilotView(ctx);
}

/**
 * Force: the active rollout goes to the rest of the fleet now, without the rest of its soak; with
 * none active, the pending state goes to every node it changes at once, with no canary.
 */
export async function forceRollout(ctx: AppContext, caller: Caller): Promise<AutopilotView> {
  await inAutopilotTx(ctx, async (tx) => {
    const row = await activeRolloutRow(tx);
    if (row) {
      const active = await loadActive(tx, row);
      if (active.state === 'promoting') throw new AppError('CONFLICT', `rollout ${active.id} is already going to every node`);
      await promote(ctx, tx, active, null, 'forced by an operator', caller);
      return;
    }
    const { nodes, render } = await renderFleet(tx, ctx.config.policy.dkimKeyDir);
    if (render.dirty.length === 0) throw new AppError('CONFLICT', 'every node already has what it should: there is nothing to roll out');
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    await startRollout(ctx, tx, { urgent: false, reason: 'forced by an operator', canaries: [], nodes: render.dirty.map((d) => byId.get(d.nodeId)!), renderSha: render.sha, now: ctx.now() }, caller);
    await setPending(tx, null);
  });
  return autopilotView(ctx);
}

/**
 * Skip: the active rollout stops and its canaries go back to what they ran; the fleet state it
 * carried (or, with none active, the pending one) is not rolled out again until the state changes.
 */
export async function skipRollout(ctx: AppContext, caller: Caller): Promise<AutopilotView> {
  await inAutopilotTx(ctx, async (tx, ap) => {
    const now = ctx.now();
    const row = await activeRolloutRow(tx);
    let sha: string;
    if (row) {
      if (row.state === 'promoting') throw new AppError('CONFLICT', `rollout ${row.id} is already going to every node: it can no longer be skipped`);
      const withdrawn = await tx
        .updateTable('policy_versions')
        .set({ rolled_back_at: now })
        .where('rollout_id', '=', row.id)
        .where('published_at', 'is not', null)
        .where('rolled_back_at', 'is', null)
        .returning(['node_id', 'version'])
        .execute();
      await finishRollout(tx, String(row.id), 'skipped', 'skipped by an operator', now);
      await writeAudit(tx, caller, { action: 'policy.rollout.skip', targetType: 'policy_rollout', targetId: String(row.id), details: { withdrawn } });
      sha = row.render_sha256;
    } else if (ap.pending_render_sha256) {
      sha = ap.pending_render_sha256;
      await writeAudit(tx, caller, { action: 'policy.rollout.skip', targetType: 'policy_autopilot', targetId: null, details: { render_sha256: sha } });
    } else {
      throw new AppError('CONFLICT', 'there is no rollout in progress and no change pending');
    }
    await tx.updateTable('policy_autopilot').set({ skipped_render_sha256: sha, pending_render_sha256: null, pending_since: null, pending_changed_at: null }).execute();
  });
  return autopilotView(ctx);
}
