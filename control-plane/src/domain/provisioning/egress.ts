/**
 * Port-25 egress: whether a node can reach the world's MX hosts at all.
 *
 * Hetzner (like most clouds) blocks outgoing TCP 25 on new accounts until the operator asks for the
 * limit to be lifted and it is granted. The block is per account/project, not per server, so the state
 * lives on the project; each node's own probe (connect to a public MX on 25) is the evidence.
 *
 * The rule the placement engine must keep: **never place external mail on a node whose egress is not
 * open.** A node whose project is `blocked` or only `requested` would accept mail and then defer it for
 * days; a node whose own last probe failed is treated the same, whatever the paperwork says.
 *
 * Pure: events and probe results come in as values; the caller stores the state and the time.
 */

export const EGRESS_STATES = ['blocked', 'requested', 'open'] as const;
/** `blocked`: new account, nothing asked; `requested`: the limit request is filed; `open`: port 25 works */
export type Port25Egress = (typeof EGRESS_STATES)[number];

export type EgressEvent =
  /** the operator filed the provider's "unblock port 25" limit request */
  | { kind: 'limit_requested' }
  /** the provider said yes (operator-recorded); a probe still has to confirm it per node */
  | { kind: 'limit_granted' }
  /** the provider said no, or withdrew it (abuse) */
  | { kind: 'limit_denied' }
  /**
   * A node's probe: `connected` when at least one public MX accepted a TCP connection on 25. The node
   * tries several MX hosts so that one receiver being down does not read as a block.
   */
  | { kind: 'probe'; connected: boolean };

/**
 * The project's next egress state. A successful probe opens it whatever was recorded: the block is
 * demonstrably gone. A failed probe leaves the project as it is and stops only the node that ran it
 * (mayCarryExternalMail): one node's broken route or a flaky minute must not take a whole account's
 * fleet off the air, and when the provider does re-block the account every node's probe fails and
 * each node stops on its own evidence. Only the operator's `limit_denied` closes a project.
 */
export function nextEgressState(current: Port25Egress, event: EgressEvent): Port25Egress {
  switch (event.kind) {
    case 'limit_requested':
      // asking again while open changes nothing: it already works
      return current === 'open' ? 'open' : 'requested';
    case 'limit_granted':
      return 'open';
    case 'limit_denied':
      return 'blocked';
    case 'probe':
      return event.connected ? 'open' : current;
  }
}

/**
 * What a node saw trying one public MX on port 25 (mta-nodes/bin/kcp-egress-probe reports these; the
 * verdict is drawn here, once, not on the node):
 * - `greeted`: the MX answered with an SMTP reply (its 220 greeting, or a busy 421, a 554): port 25
 *   demonstrably leaves the host
 * - `connected`: the handshake completed but no SMTP reply came: no evidence, since a middlebox or a
 *   provider's filter can complete a handshake and close
 * - `timed_out`, `refused`, `unreachable`: no connection (how a provider's block looks)
 * - `no_address`: the MX name did not resolve: says nothing about port 25
 * - `error`: anything else on the node (no evidence either way)
 */
export const PROBE_OUTCOMES = ['greeted', 'connected', 'timed_out', 'refused', 'unreachable', 'no_address', 'error'] as const;
export type ProbeOutcome = (typeof PROBE_OUTCOMES)[number];

export type ProbeVerdict = 'connected' | 'blocked' | 'inconclusive';

/**
 * One probe's verdict from its attempts: connected when any MX answered in SMTP (mail may go out on
 * that evidence alone, so nothing less counts); blocked when none did and at least one attempt got
 * no connection at all; inconclusive otherwise (names that did not resolve, handshakes without a
 * reply, local errors), which must read neither as open nor as a block.
 *
 * @example
 * probeVerdict(['timed_out', 'greeted']) // → 'connected'
 * probeVerdict(['timed_out', 'no_address']) // → 'blocked'
 * probeVerdict(['connected', 'no_address']) // → 'inconclusive'
 */
export function probeVerdict(outcomes: readonly ProbeOutcome[]): ProbeVerdict {
  if (outcomes.includes('greeted')) return 'connected';
  if (outcomes.some((o) => o === 'timed_out' || o === 'refused' || o === 'unreachable')) return 'blocked';
  return 'inconclusive';
}

/** The latest probe a node ran, if any. */
export interface EgressProbe {
  connected: boolean;
  /** epoch ms when it ran */
  atMs: number;
}

export interface NodeEgressFacts {
  /** the node's project's state */
  projectEgress: Port25Egress;
  /** the node's own last probe; null when it has not probed yet */
  lastProbe: EgressProbe | null;
  /** now, epoch ms (passed in: the core reads no clock) */
  nowMs: number;
  /** a probe older than this no longer counts as evidence (default 24 h) */
  probeMaxAgeMs?: number;
}

export type ExternalMailDecision =
  | { allowed: true }
  | { allowed: false; reason: 'project_egress_blocked' | 'project_egress_requested' | 'node_probe_failed' | 'node_not_probed' | 'node_probe_stale' };

export const DEFAULT_PROBE_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * May this node carry mail to external MX hosts? Only when the project's egress is `open` **and** the
 * node itself proved it recently. Warming-only or internal relaying is not this function's question.
 *
 * @example
 * mayCarryExternalMail({ projectEgress: 'open', lastProbe: { connected: true, atMs: t }, nowMs: t + 1000 })
 * // → { allowed: true }
 */
export function mayCarryExternalMail(facts: NodeEgressFacts): ExternalMailDecision {
  if (facts.projectEgress === 'blocked') return { allowed: false, reason: 'project_egress_blocked' };
  if (facts.projectEgress === 'requested') return { allowed: false, reason: 'project_egress_requested' };
  if (facts.lastProbe === null) return { allowed: false, reason: 'node_not_probed' };
  if (!facts.lastProbe.connected) return { allowed: false, reason: 'node_probe_failed' };
  if (facts.nowMs - facts.lastProbe.atMs > (facts.probeMaxAgeMs ?? DEFAULT_PROBE_MAX_AGE_MS)) return { allowed: false, reason: 'node_probe_stale' };
  return { allowed: true };
}

/** Operator-facing text for each refusal, used in placement explanations and the node view. */
export const EGRESS_REFUSAL_TEXT: Record<Exclude<ExternalMailDecision, { allowed: true }>['reason'], string> = {
  project_egress_blocked: 'outgoing port 25 is blocked for this provider project; file the limit request to unblock it',
  project_egress_requested: 'the port-25 unblock request for this provider project is not granted yet',
  node_probe_failed: 'the node could not connect to any public MX on port 25 in its last probe',
  node_not_probed: 'the node has not yet proved it can reach public MX hosts on port 25',
  node_probe_stale: 'the node has not proved port-25 egress recently; it must probe again',
};
