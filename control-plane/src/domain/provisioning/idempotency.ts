/**
 * Idempotent creates at the provider, by label.
 *
 * A create the control plane sends may land even though we never see the answer (the process crashes,
 * the connection drops after the provider committed). Re-running it blindly would buy a second server
 * or IP. So every resource the control plane creates carries two labels it chose *before* sending:
 *   kcp.managed-by = kumo-control-plane   (ours; never touch what is not)
 *   kcp.intent     = <idempotency key>    (which intent created it: e.g. the node id)
 * and a create first asks the provider for resources with that intent label. One found: adopt it. None:
 * create. More than one: stop, a human must look (it cannot happen through this code path, so something
 * else made one).
 *
 * Label syntax follows the provider's rules (Hetzner's: key `[prefix/]name`, name and value up to 63
 * characters of `[a-zA-Z0-9._-]`, starting and ending alphanumeric), which the other providers' tag
 * rules also accept.
 */
import { err, ok, type Result } from '../shared/result.js';

export const MANAGED_BY_LABEL = 'kcp.managed-by';
export const MANAGED_BY_VALUE = 'kumo-control-plane';
export const INTENT_LABEL = 'kcp.intent';

const LABEL_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;
const LABEL_PREFIX = /^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,251}[a-zA-Z0-9])?$/;
const LABEL_VALUE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$/;

export function isValidLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return LABEL_NAME.test(key);
  return LABEL_PREFIX.test(key.slice(0, slash)) && LABEL_NAME.test(key.slice(slash + 1));
}

export const isValidLabelValue = (value: string): boolean => LABEL_VALUE.test(value);

/** Every invalid label, described; empty when all are fine. */
export function labelProblems(labels: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!isValidLabelKey(k)) problems.push(`label key ${JSON.stringify(k)} is not a valid label key`);
    if (!isValidLabelValue(v)) problems.push(`label ${k}: value ${JSON.stringify(v)} is not a valid label value`);
  }
  return problems;
}

/**
 * The labels a create sends: the caller's, plus ours. Ours win, so a caller cannot accidentally
 * re-point an intent. Returns every problem at once when the key or a label is invalid.
 */
export function labelsForCreate(idempotencyKey: string, labels: Record<string, string>): Result<Record<string, string>, string[]> {
  const merged = { ...labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [INTENT_LABEL]: idempotencyKey };
  const problems = labelProblems(merged);
  if (idempotencyKey === '') problems.unshift('the idempotency key is empty');
  return problems.length ? err(problems) : ok(merged);
}

/** The labels that identify the resource an intent created. */
export const intentLabels = (idempotencyKey: string): Record<string, string> => ({ [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [INTENT_LABEL]: idempotencyKey });

/** A provider label selector (`k=v,k2=v2`, keys sorted) matching resources carrying all of `labels`. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** Does a resource's label set carry every one of `wanted`? */
export function hasLabels(resourceLabels: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => resourceLabels[k] === v);
}

export type CreateDecision<R> =
  | { kind: 'create' }
  | { kind: 'adopt'; resource: R }
  | { kind: 'ambiguous'; ids: string[] };

/**
 * Given what the provider lists for the intent's labels, create or adopt. Resources not carrying the
 * labels are ignored (a provider that ignores the selector must not make us adopt a stranger's server).
 */
export function decideCreate<R extends { id: string; labels: Record<string, string> }>(found: readonly R[], idempotencyKey: string): CreateDecision<R> {
  const mine = found.filter((r) => hasLabels(r.labels, intentLabels(idempotencyKey)));
  if (mine.length === 0) return { kind: 'create' };
  if (mine.length === 1) return { kind: 'adopt', resource: mine[0]! };
  return { kind: 'ambiguous', ids: mine.map((r) => r.id).sort() };
}
