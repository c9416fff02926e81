/**
 * Per-tenant external throttles, shared by every node through Redis. The name and the spec together
 * form the Redis key kumod writes (`kumo.make_throttle(name, spec)` stores its GCRA state under
 * `lua-user-throttle-<name>:<limit>:<max_burst>:<period seconds>`), so the control plane can read a
 * tenant's remaining budget without consuming it. Changing a spec changes the key (a fresh bucket).
 */
export const externalThrottleName = (tenantId: string): string => `kcp-ext-${tenantId}`;

/**
 * A warming IP's daily cap for one mailbox provider, as one named source-selection throttle
 * (`additional_source_selection_rates`): kumod keys it by this name alone, so every MX site of the
 * provider shares the one bucket, on whichever node the IP lives.
 */
export const warmupThrottleName = (sourceName: string, provider: string): string => `kcp-warmup-${sourceName}-${provider}`;

export interface ThrottleSpec {
  limit: number;
  periodSeconds: number;
  maxBurst: number;
}

const UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hr: 3600, hour: 3600, d: 86400, day: 86400 };

/** KumoMTA's ThrottleSpec grammar: `[local:]N/[K]unit[,max_burst=B]`; plural units are refused, as kumod does. */
export function parseThrottleSpec(spec: string): ThrottleSpec | null {
  const m = /^(?:local:)?([\d_,]+)\/(\d*)([a-z]+)(?:,max_burst=(\d+))?$/.exec(spec);
  if (!m || !(m[3]! in UNITS)) return null;
  const limit = Number(m[1]!.replace(/[_,]/g, ''));
  const k = m[2] === '' ? 1 : Number(m[2]);
  if (!Number.isSafeInteger(limit) || limit <= 0 || k <= 0) return null;
  return { limit, periodSeconds: k * UNITS[m[3]!]!, maxBurst: m[4] === undefined ? limit : Number(m[4]) };
}

/** The Redis key of a throttle kumod names verbatim (additional_*_rates): `<name>:<limit>:<burst>:<period>`. */
export function namedThrottleRedisKey(name: string, spec: string): string {
  const s = parseThrottleSpec(spec);
  if (!s) throw new RangeError(`not a throttle spec: ${spec}`);
  return `${name}:${s.limit}:${s.maxBurst}:${s.periodSeconds}`;
}

/** The Redis key of `kumo.make_throttle(name, spec)`: kumod prefixes the name with `lua-user-throttle-`. */
export function throttleRedisKey(name: string, spec: string): string {
  return namedThrottleRedisKey(`lua-user-throttle-${name}`, spec);
}
