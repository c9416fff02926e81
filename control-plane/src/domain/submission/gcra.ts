/**
 * Reading a KumoMTA GCRA throttle without consuming it. kumod stores, per key, the bucket's
 * "theoretical arrival time" (TAT): a float of unix seconds from its embedded Redis script, or an
 * integer of unix nanoseconds with the redis-cell module. With emission interval I = period / limit
 * and burst B, the bucket is full when TAT <= now, and each token in use pushes TAT one I further.
 * Pure: the caller reads the value and Redis's clock.
 */
import type { ThrottleSpec } from '../policy/throttles.js';

export type StoredTat = { kind: 'seconds'; tat: number } | { kind: 'nanoseconds'; tat: bigint } | null;

/** Parse a stored value: 18 or more digits without a point are redis-cell's nanoseconds. */
export function parseStoredTat(value: string | null): StoredTat {
  if (value === null) return null;
  if (/^\d{18,}$/.test(value)) return { kind: 'nanoseconds', tat: BigInt(value) };
  const n = Number(value);
  return Number.isFinite(n) ? { kind: 'seconds', tat: n } : null;
}

export interface Budget {
  /** messages that may go now */
  remaining: number;
  capacity: number;
  /** seconds until the next token frees (0 when some remain) */
  nextInSeconds: number;
  /** seconds until the bucket is full again */
  fullInSeconds: number;
}

/**
 * Remaining capacity. The script backend allows up to B in a burst, redis-cell up to B + 1 (it counts
 * the current request), which is why the two formats differ by one.
 */
export function budget(stored: StoredTat, nowSeconds: number, spec: ThrottleSpec): Budget {
  const interval = spec.periodSeconds / spec.limit;
  const capacity = stored?.kind === 'nanoseconds' ? spec.maxBurst + 1 : spec.maxBurst;
  if (stored === null) return { remaining: capacity, capacity, nextInSeconds: 0, fullInSeconds: 0 };
  const tat = Math.max(stored.kind === 'seconds' ? stored.tat : Number(stored.tat) / 1e9, nowSeconds);
  // the same operations, in the same order, as kumod's check for one more message, so that
  // "remaining > 0" and "kumod would allow the next one" agree to the last bit of the float
  const allowAt = tat + interval - capacity * interval;
  const diff = nowSeconds - allowAt;
  const remaining = diff >= 0 ? Math.min(capacity, Math.floor(diff / interval + 1e-9) + 1) : 0;
  return { remaining, capacity, nextInSeconds: diff >= 0 ? 0 : -diff, fullInSeconds: tat - nowSeconds };
}
