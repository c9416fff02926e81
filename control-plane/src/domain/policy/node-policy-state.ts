/**
 * What a node runs, as opposed to what it was sent. A node reports on every pull the hash of the
 * module its Lua states load (and which copy: the installed one, its last known good, or none), and
 * the reason its last install failed; from that and the times involved, one rule says whether the
 * node is up to date, still applying, stale, or not pulling at all. The rollout autopilot and
 * /v1/policy/status both read it from here.
 */
import type { FieldProblem } from '../shared/errors.js';

export const RUNNING_COPIES = ['generated', 'last_known_good', 'none'] as const;
export type RunningCopy = (typeof RUNNING_COPIES)[number];

/** What a node says about itself in the headers of a pull. */
export interface NodeReport {
  /** SHA-256 (hex) of the module the node's Lua states load; null when it runs none */
  runningSha256: string | null;
  copy: RunningCopy;
  /** why its last install failed, cleaned for storage and logs; null when it did not */
  installError: string | null;
  /** how many messages its kumod holds (its message_count gauge); null when it did not say */
  queuedMessages: number | null;
}

export const NODE_REPORT_HEADERS = {
  running: 'x-kcp-running-sha256',
  copy: 'x-kcp-running-copy',
  installError: 'x-kcp-install-error',
  queued: 'x-kcp-queued-messages',
} as const;

export const MAX_INSTALL_ERROR_CHARS = 500;

/**
 * The node's report from its request headers: null when it sent none (an older runtime), a problem
 * list when what it sent is malformed. The error text is the node's own words, so it is cut to
 * printable characters before anyone stores or logs it.
 */
export function parseNodeReport(header: (name: string) => string | undefined): NodeReport | { problems: FieldProblem[] } | null {
  const running = header(NODE_REPORT_HEADERS.running);
  const copy = header(NODE_REPORT_HEADERS.copy);
  const error = header(NODE_REPORT_HEADERS.installError);
  const queued = header(NODE_REPORT_HEADERS.queued);
  if (running === undefined && copy === undefined && error === undefined && queued === undefined) return null;
  const problems: FieldProblem[] = [];
  const sha = running === undefined || running === '' || running === 'none' ? null : running.trim().toLowerCase();
  if (sha !== null && !/^[0-9a-f]{64}$/.test(sha)) problems.push({ path: `header.${NODE_REPORT_HEADERS.running}`, message: 'must be a SHA-256 in hex, or none' });
  const c = (copy ?? (sha === null ? 'none' : 'generated')).trim();
  if (!(RUNNING_COPIES as readonly string[]).includes(c)) problems.push({ path: `header.${NODE_REPORT_HEADERS.copy}`, message: `must be one of ${RUNNING_COPIES.join(', ')}` });
  if ((c === 'none') !== (sha === null) && problems.length === 0) problems.push({ path: `header.${NODE_REPORT_HEADERS.copy}`, message: 'a node runs no module exactly when it reports no hash' });
  const q = queued === undefined ? null : queued.trim();
  if (q !== null && !/^\d{1,12}$/.test(q)) problems.push({ path: `header.${NODE_REPORT_HEADERS.queued}`, message: 'must be a whole number of messages' });
  if (problems.length > 0) return { problems };
  return { runningSha256: sha, copy: c as RunningCopy, installError: error === undefined ? null : cleanNodeText(error), queuedMessages: q === null ? null : Number(q) };
}

/** Printable ASCII only, runs of anything else as one space, at most MAX_INSTALL_ERROR_CHARS. */
export function cleanNodeText(text: string): string | null {
  const cleaned = text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, MAX_INSTALL_ERROR_CHARS);
  return cleaned === '' ? null : cleaned;
}

export type NodePolicyState = 'no_policy' | 'not_pulling' | 'up_to_date' | 'applying' | 'stale';

export interface NodePolicyFacts {
  /** the version the node should run (newest published, not rolled back) */
  current: { version: number; contentSha256: string; publishedAt: Date } | null;
  applied: { sha256: string | null; at: Date | null; copy: RunningCopy | null };
  lastPullAt: Date | null;
  installError: string | null;
  now: Date;
  /** how long a node may go without pulling, or without running what it was given (CP_NODE_STALE_MS) */
  staleMs: number;
}

export interface NodePolicyVerdict {
  state: NodePolicyState;
  /** the node runs a copy other than the one installed last: it fell back after a bad module */
  fallback: boolean;
  reason: string;
}

export function nodePolicyVerdict(f: NodePolicyFacts): NodePolicyVerdict {
  const fallback = f.applied.copy === 'last_known_good';
  const since = (t: Date) => f.now.getTime() - t.getTime();
  if (!f.current) return { state: 'no_policy', fallback, reason: 'nothing has been published for this node' };
  if (f.lastPullAt === null) return { state: 'not_pulling', fallback, reason: 'the node has never pulled its policy' };
  if (since(f.lastPullAt) >= f.staleMs) return { state: 'not_pulling', fallback, reason: `the node last pulled ${Math.round(since(f.lastPullAt) / 1000)} s ago` };
  if (f.applied.sha256 === f.current.contentSha256) {
    return { state: 'up_to_date', fallback, reason: `the node runs version ${f.current.version}` };
  }
  const why = f.installError ? `; its last install failed: ${f.installError}` : '';
  if (since(f.current.publishedAt) < f.staleMs) return { state: 'applying', fallback, reason: `version ${f.current.version} was published ${Math.round(since(f.current.publishedAt) / 1000)} s ago and is not running yet${why}` };
  return { state: 'stale', fallback, reason: `the node does not run version ${f.current.version}, published ${Math.round(since(f.current.publishedAt) / 1000)} s ago${why}` };
}
