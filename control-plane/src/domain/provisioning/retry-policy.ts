/**
 * When to send a failed provider request again, and how long to wait first.
 *
 * Three kinds of failure, three answers:
 * - The provider refused before doing anything (`locked`: another action runs on the resource;
 *   `conflict`: it changed under us; `rate_limit_exceeded`): sending the same request again is safe.
 * - We do not know whether it happened (network error, cut-off response, 5xx, timeout): safe to resend
 *   only if the request is idempotent (GET, DELETE, assign, change_dns_ptr). A create is not: resending
 *   it after the provider already created the server buys a second one. So a create is *reconciled*
 *   first: look for the resource by the idempotency label it was sent with (idempotency.ts) and adopt
 *   it if it is there.
 * - Anything else (invalid input, read-only token, quota reached, not found) will fail the same way
 *   again: give up and tell the operator.
 *
 * Back-off is exponential with a cap, plus jitter so that replicas that failed together do not retry
 * together. Pure: the jitter draw comes in as a number in [0, 1).
 */
import { isRetryableProviderCode, type ProviderErrorCode } from './provider-errors.js';

export interface RetryPolicy {
  /** attempts in all, the first included */
  maxAttempts: number;
  /** the delay before the first retry */
  baseDelayMs: number;
  multiplier: number;
  /** no single delay is longer than this */
  maxDelayMs: number;
}

/** Six attempts over roughly a minute at most: 1 s, 2 s, 4 s, 8 s, 16 s (each jittered, capped at 60 s). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 1000, multiplier: 2, maxDelayMs: 60_000 };

/** Failures after which we cannot know whether the provider carried the request out. */
const OUTCOME_UNKNOWN: ReadonlySet<ProviderErrorCode> = new Set<ProviderErrorCode>(['PROVIDER_NETWORK', 'PROVIDER_UNAVAILABLE', 'PROVIDER_TIMEOUT']);

/** True when the request may have taken effect despite the error. */
export const outcomeUnknown = (code: ProviderErrorCode): boolean => OUTCOME_UNKNOWN.has(code);

/**
 * The delay before retry number `retry` (0 for the first retry): `base · multiplier^retry`, capped,
 * then spread over [base, capped] by `jitter01`, so it never drops below the base delay.
 */
export function backoffDelayMs(policy: RetryPolicy, retry: number, jitter01: number): number {
  const raw = policy.baseDelayMs * Math.pow(policy.multiplier, Math.max(0, retry));
  const capped = Math.min(policy.maxDelayMs, raw);
  const floor = Math.min(policy.baseDelayMs, capped);
  const j = Math.min(Math.max(jitter01, 0), 1);
  return Math.round(floor + (capped - floor) * j);
}

export interface FailedAttempt {
  code: ProviderErrorCode;
  /** attempts made so far, this one included (1 after the first failure) */
  attempt: number;
  /** the request may be sent twice without changing the result */
  idempotent: boolean;
  /** the caller can look the resource up by its idempotency label before resending */
  canReconcile: boolean;
  /** the provider's own "wait this long", when it said */
  retryAfterMs?: number;
  /** a draw in [0, 1) for the jitter */
  jitter01: number;
}

export type RetryDecision =
  | { action: 'retry'; delayMs: number }
  /** look for the resource by its idempotency label; adopt it if found, else resend after `delayMs` */
  | { action: 'reconcile'; delayMs: number }
  | { action: 'give_up'; reason: 'not_retryable' | 'attempts_exhausted' | 'outcome_unknown' };

/**
 * @example
 * decideRetry({ code: 'PROVIDER_LOCKED', attempt: 1, idempotent: false, canReconcile: true, jitter01: 0 }, policy)
 * // → { action: 'retry', delayMs: policy.baseDelayMs }
 * decideRetry({ code: 'PROVIDER_NETWORK', attempt: 1, idempotent: false, canReconcile: true, jitter01: 0 }, policy)
 * // → { action: 'reconcile', delayMs: policy.baseDelayMs }
 */
export function decideRetry(f: FailedAttempt, policy: RetryPolicy = DEFAULT_RETRY_POLICY): RetryDecision {
  if (!isRetryableProviderCode(f.code)) return { action: 'give_up', reason: 'not_retryable' };
  if (f.attempt >= policy.maxAttempts) return { action: 'give_up', reason: 'attempts_exhausted' };
  // A rate limit is paced by the request budget (request-budget.ts), which already knows when the next
  // request fits; adding back-off on top would only slow the whole project down.
  const delayMs =
    f.code === 'PROVIDER_RATE_LIMITED'
      ? Math.max(0, f.retryAfterMs ?? 0)
      : Math.max(backoffDelayMs(policy, f.attempt - 1, f.jitter01), f.retryAfterMs ?? 0);
  if (outcomeUnknown(f.code) && !f.idempotent) {
    return f.canReconcile ? { action: 'reconcile', delayMs } : { action: 'give_up', reason: 'outcome_unknown' };
  }
  return { action: 'retry', delayMs };
}

/**
 * The pause before poll number `poll` (0-based) of running actions: quick at first, because most
 * actions (assign, change_dns_ptr) finish in a second or two, then slower, because a server create can
 * take a minute and each poll costs a request from the budget.
 */
export interface PollPolicy {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /** stop waiting after this long in all */
  timeoutMs: number;
  /** how many action ids to ask for in one request (Hetzner's list filters take many `id=`s) */
  batchSize: number;
}

export const DEFAULT_POLL_POLICY: PollPolicy = { initialDelayMs: 500, multiplier: 1.5, maxDelayMs: 10_000, timeoutMs: 10 * 60_000, batchSize: 25 };

export function pollDelayMs(policy: PollPolicy, poll: number): number {
  return Math.round(Math.min(policy.maxDelayMs, policy.initialDelayMs * Math.pow(policy.multiplier, Math.max(0, poll))));
}

/** Split ids into request-sized batches, in a stable order (sorted, so polls are reproducible). */
export function pollBatches(ids: readonly string[], batchSize: number): string[][] {
  const sorted = [...new Set(ids)].sort((a, b) => (a.length - b.length) || (a < b ? -1 : a > b ? 1 : 0));
  const out: string[][] = [];
  for (let i = 0; i < sorted.length; i += Math.max(1, batchSize)) out.push(sorted.slice(i, i + Math.max(1, batchSize)));
  return out;
}
