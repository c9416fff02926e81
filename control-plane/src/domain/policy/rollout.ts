/**
 * The policy autopilot's rules, with no I/O: when a change to the fleet's state goes out, to which
 * nodes first, when a canary has proven it, and when it has failed. The worker loads the facts, asks
 * `decideRollout` for the one step to take now, and carries it out; every tick asks again, so a
 * crash between steps loses nothing.
 *
 * A change that cannot wait for a canary (a tenant newly held back from external sending, an IP that
 * stops carrying mail) goes to every node it affects within `urgent_delay_seconds`, taking every other
 * pending change with it (a module is whole). Anything else is debounced, goes to the canaries, and
 * reaches the rest of the fleet only once the canaries run it and their own delivery rates held.
 */
import type { Settings } from '../settings/settings.js';
import type { PolicyModel } from './policy-model.js';

export type RolloutSettings = Settings['policy_rollout'];

/** The parts of a node's module whose change must not wait: sorted lists of names. */
export interface SafetyDigest {
  /** tenants the module keeps off external sending (locked, rehabilitation, quarantine) */
  held: string[];
  /** egress sources that carry mail */
  carrying: string[];
  /** every tenant the module knows */
  tenants: string[];
}

export function safetyDigest(model: PolicyModel): SafetyDigest {
  const sorted = (xs: string[]) => [...xs].sort();
  return {
    held: sorted(Object.keys(model.tenants).filter((id) => model.tenants[id]!.external_locked)),
    carrying: sorted(Object.keys(model.sources).filter((name) => model.sources[name]!.carries_mail)),
    tenants: sorted(Object.keys(model.tenants)),
  };
}

/**
 * Why going from `before` to `after` is urgent, or nothing when it is not: a tenant the node knew and
 * let send externally is now held back or gone (suspended), or a source that carried mail no longer
 * does. Releasing, adding and re-weighting are never urgent.
 */
export function urgentReasons(node: string, before: SafetyDigest | null, after: SafetyDigest): string[] {
  if (!before) return [];
  const held = new Set(after.held);
  const known = new Set(after.tenants);
  const wasHeld = new Set(before.held);
  const carrying = new Set(after.carrying);
  const reasons: string[] = [];
  for (const t of before.tenants) {
    if (wasHeld.has(t)) continue;
    if (!known.has(t)) reasons.push(`${node}: tenant ${t} is no longer active`);
    else if (held.has(t)) reasons.push(`${node}: tenant ${t} is held back from external sending`);
  }
  for (const s of before.carrying) if (!carrying.has(s)) reasons.push(`${node}: source ${s} no longer carries mail`);
  return reasons;
}

export interface DirtyNode {
  nodeId: string;
  name: string;
  canary: boolean;
}

/** The fleet as rendered now, against what its nodes are meant to run. */
export interface FleetRender {
  /** one hash over every node's module: names the fleet state */
  sha: string;
  /** nodes that have a published version unlike their render */
  dirty: DirtyNode[];
  /** nodes with no published version at all: they refuse mail until they have one */
  bootstrap: DirtyNode[];
  urgent: string[];
}

export interface Pending {
  sha: string;
  since: Date;
  changedAt: Date;
}

export interface AutopilotFacts {
  paused: boolean;
  skippedSha: string | null;
  pending: Pending | null;
}

export interface RolloutNode {
  nodeId: string;
  name: string;
  canary: boolean;
  /** the node reports it runs the version the rollout gave it */
  applied: boolean;
  /** the node's install error, if it reported one since the rollout gave it its version */
  installError: string | null;
}

export interface ActiveRollout {
  id: string;
  state: 'canary' | 'soaking' | 'promoting';
  urgent: boolean;
  renderSha: string;
  createdAt: Date;
  canaryAppliedAt: Date | null;
  promotedAt: Date | null;
  nodes: RolloutNode[];
}

/** Delivery records of the canary nodes over a window, by what happened. */
export interface RecordCounts {
  delivered: number;
  bounced: number;
  deferred: number;
  expired: number;
  /** refused at reception, or failed inside kumod: what a broken policy produces */
  errors: number;
}

export const NO_RECORDS: RecordCounts = { delivered: 0, bounced: 0, deferred: 0, expired: 0, errors: 0 };

export interface CanaryHealth {
  baseline: RecordCounts;
  soak: RecordCounts;
}

export interface HealthVerdict {
  verdict: 'healthy' | 'degraded' | 'not_enough_records';
  findings: string[];
  rates: { baseline: Rates; soak: Rates; baselineRecords: number; soakRecords: number };
}

export interface Rates {
  bounce_pct: number;
  deferral_pct: number;
  error_pct: number;
}

const total = (c: RecordCounts) => c.delivered + c.bounced + c.deferred + c.expired + c.errors;
const pctOf = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 10000) / 100);

export function ratesOf(c: RecordCounts): Rates {
  const attempts = c.delivered + c.bounced + c.deferred + c.expired;
  return { bounce_pct: pctOf(c.bounced, attempts), deferral_pct: pctOf(c.deferred, attempts), error_pct: pctOf(c.errors, total(c)) };
}

/**
 * The canaries against their own recent past: each rate may rise by at most its allowance in
 * percentage points. A baseline too small to say anything (fewer than `min_records`) counts as zero,
 * so a quiet canary is judged against the allowances themselves.
 */
export function judgeCanary(h: CanaryHealth, s: RolloutSettings): HealthVerdict {
  const baselineRecords = total(h.baseline);
  const soakRecords = total(h.soak);
  const baseline = baselineRecords >= s.min_records && baselineRecords > 0 ? ratesOf(h.baseline) : { bounce_pct: 0, deferral_pct: 0, error_pct: 0 };
  const soak = ratesOf(h.soak);
  const rates = { baseline, soak, baselineRecords, soakRecords };
  if (soakRecords < s.min_records || soakRecords === 0) return { verdict: 'not_enough_records', findings: [`${soakRecords} delivery records from the canaries, ${s.min_records} needed to judge`], rates };
  const findings: string[] = [];
  const check = (what: string, key: keyof Rates, allowed: number) => {
    const rise = Math.round((soak[key] - baseline[key]) * 100) / 100;
    if (rise > allowed) findings.push(`${what} rate ${soak[key]}% against a baseline of ${baseline[key]}% (+${rise} points, at most +${allowed} allowed)`);
  };
  check('hard-bounce', 'bounce_pct', s.max_bounce_increase_pts);
  check('deferral', 'deferral_pct', s.max_deferral_increase_pts);
  check('error', 'error_pct', s.max_error_increase_pts);
  return { verdict: findings.length > 0 ? 'degraded' : 'healthy', findings, rates };
}

/** The canaries for a change: nodes marked canary first, then the rest by name, among the nodes it changes. */
export function chooseCanaries(dirty: DirtyNode[], count: number): DirtyNode[] {
  const byName = (a: DirtyNode, b: DirtyNode) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return [...dirty.filter((n) => n.canary).sort(byName), ...dirty.filter((n) => !n.canary).sort(byName)].slice(0, count);
}

export type RolloutStep =
  | { kind: 'idle'; why: string }
  | { kind: 'track'; pending: Pending | null; why: string }
  | { kind: 'start'; urgent: boolean; reasons: string[]; canaries: DirtyNode[]; nodes: DirtyNode[]; supersede: string | null }
  | { kind: 'canary_applied' }
  | { kind: 'promote'; health: HealthVerdict | null; why: string }
  | { kind: 'rollback'; why: string; health: HealthVerdict | null }
  | { kind: 'finish'; outcome: string; laggards: string[] }
  | { kind: 'wait'; why: string };

export interface RolloutFacts {
  now: Date;
  settings: RolloutSettings;
  autopilot: AutopilotFacts;
  render: FleetRender;
  active: ActiveRollout | null;
  /** loaded only while soaking */
  health: CanaryHealth | null;
}

const secondsSince = (now: Date, t: Date) => (now.getTime() - t.getTime()) / 1000;

/** The pending change after this tick: the same one, a newer one (debounce restarts), or none. */
export function nextPending(now: Date, pending: Pending | null, sha: string | null): Pending | null {
  if (sha === null) return null;
  if (pending && pending.sha === sha) return pending;
  return { sha, since: pending?.since ?? now, changedAt: now };
}

/** The one step to take now. */
export function decideRollout(f: RolloutFacts): RolloutStep {
  const s = f.settings;
  const active = f.active;
  // a change beyond what is rolling out (or, with nothing rolling out, any difference at all)
  const changed = active ? f.render.sha !== active.renderSha && f.render.dirty.length > 0 : f.render.dirty.length > 0;
  const pending = nextPending(f.now, f.autopilot.pending, changed && f.render.sha !== f.autopilot.skippedSha ? f.render.sha : null);
  const quiet = pending !== null && secondsSince(f.now, pending.changedAt) >= s.debounce_seconds;
  const overdue = pending !== null && secondsSince(f.now, pending.since) >= s.max_delay_seconds;
  // urgent_delay_seconds bounds how long an urgent change waits; it is no reason to wait longer than
  // an ordinary one would, and a change that is urgent never goes out through the canaries
  const urgentDue = pending !== null && f.render.urgent.length > 0 && (quiet || secondsSince(f.now, pending.since) >= s.urgent_delay_seconds);

  if (active) {
    const step = advance(f, active);
    // a canary that failed is rolled back first: an urgent change must never carry what it refused
    // to the rest of the fleet. The rollback pauses the autopilot, and a module is whole, so an urgent
    // change waits for the operator too (the gateway holds a locked tenant back on its own meanwhile)
    if (step.kind === 'rollback') return step;
    // an urgent change overtakes whatever is rolling out, an urgent rollout still waiting for a node
    // that is down included: the bound holds when a node is away, which is when it matters
    if (urgentDue && !f.autopilot.paused) {
      return { kind: 'start', urgent: true, reasons: f.render.urgent, canaries: [], nodes: f.render.dirty, supersede: active.id };
    }
    // while the rollout waits, a newer change waits with it (and its debounce is tracked)
    if (step.kind === 'wait' && !samePending(pending, f.autopilot.pending)) return { kind: 'track', pending, why: step.why };
    return step;
  }

  if (!pending) {
    if (f.autopilot.pending) return { kind: 'track', pending: null, why: 'every node runs what it should' };
    return { kind: 'idle', why: f.render.dirty.length > 0 ? 'the pending fleet state was skipped by an operator' : 'every node has what it should' };
  }
  if (f.autopilot.paused) return samePending(pending, f.autopilot.pending) ? { kind: 'idle', why: 'the autopilot is paused' } : { kind: 'track', pending, why: 'the autopilot is paused' };
  if (urgentDue) return { kind: 'start', urgent: true, reasons: f.render.urgent, canaries: [], nodes: f.render.dirty, supersede: null };
  if (quiet || overdue) {
    const canaries = chooseCanaries(f.render.dirty, s.canary_count);
    return { kind: 'start', urgent: false, reasons: [quiet ? `no further change for ${s.debounce_seconds} s` : `pending for ${s.max_delay_seconds} s`], canaries, nodes: f.render.dirty, supersede: null };
  }
  if (!samePending(pending, f.autopilot.pending)) return { kind: 'track', pending, why: 'waiting for the change to settle' };
  return { kind: 'wait', why: `debouncing: out in at most ${Math.ceil(Math.min(s.debounce_seconds - secondsSince(f.now, pending.changedAt), s.max_delay_seconds - secondsSince(f.now, pending.since)))} s` };
}

function samePending(a: Pending | null, b: Pending | null): boolean {
  return a === b || (a !== null && b !== null && a.sha === b.sha && a.since.getTime() === b.since.getTime() && a.changedAt.getTime() === b.changedAt.getTime());
}

function advance(f: RolloutFacts, r: ActiveRollout): RolloutStep {
  const s = f.settings;
  const canaries = r.nodes.filter((n) => n.canary);
  if (r.state === 'canary') {
    const refused = canaries.find((n) => n.installError !== null && !n.applied);
    if (refused) return { kind: 'rollback', why: `canary ${refused.name} refused the new version: ${refused.installError}`, health: null };
    if (canaries.every((n) => n.applied)) return { kind: 'canary_applied' };
    if (secondsSince(f.now, r.createdAt) >= s.apply_timeout_seconds) {
      const late = canaries.filter((n) => !n.applied).map((n) => n.name);
      return { kind: 'rollback', why: `canary ${late.join(', ')} did not report running the new version within ${s.apply_timeout_seconds} s`, health: null };
    }
    return { kind: 'wait', why: 'waiting for the canaries to apply the new version' };
  }
  if (r.state === 'soaking') {
    const lost = canaries.find((n) => !n.applied);
    if (lost) return { kind: 'rollback', why: `canary ${lost.name} stopped running the new version${lost.installError ? `: ${lost.installError}` : ''}`, health: null };
    const health = judgeCanary(f.health ?? { baseline: NO_RECORDS, soak: NO_RECORDS }, s);
    if (health.verdict === 'degraded') return { kind: 'rollback', why: `the canaries degraded: ${health.findings.join('; ')}`, health };
    if (secondsSince(f.now, r.canaryAppliedAt!) < s.soak_seconds) return { kind: 'wait', why: `soaking: ${Math.ceil(s.soak_seconds - secondsSince(f.now, r.canaryAppliedAt!))} s left` };
    if (f.autopilot.paused) return { kind: 'wait', why: 'the autopilot is paused: the soaked rollout is not promoted' };
    return {
      kind: 'promote',
      health,
      why: health.verdict === 'healthy' ? `the canaries stayed healthy for ${s.soak_seconds} s` : `the canaries ran it for ${s.soak_seconds} s without enough traffic to judge (${health.findings.join('; ')})`,
    };
  }
  // promoting: every node of the rollout must report it runs its version
  const late = r.nodes.filter((n) => !n.applied);
  if (late.length === 0) return { kind: 'finish', outcome: `every node of the rollout runs its new version`, laggards: [] };
  if (secondsSince(f.now, r.promotedAt!) >= s.apply_timeout_seconds) {
    return { kind: 'finish', outcome: `${late.length} node(s) did not report running the new version within ${s.apply_timeout_seconds} s: ${late.map((n) => n.name).join(', ')}`, laggards: late.map((n) => n.nodeId) };
  }
  return { kind: 'wait', why: `waiting for ${late.length} node(s) to apply the new version` };
}
