/**
 * Per-tenant external throttles, shared by every node through Redis. The name and the spec together
 * form the Redis key kumod writes (`kumo.make_throttle(name, spec)` stores its GCRA state under
 * `lua-user-throttle-<name>:<limit>:<max_burst>:<period seconds>`), so the control plane can read a
 * tenant's remaining budget without consuming it. Changing a spec changes the key (a fresh bucket).
 */
export const externalThrottleName = (tenantId: string): string => `kcp-ext-${tenantId}`;

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

export function throttleRedisKey(name: string, spec: string): string {
  const s = parseThrottleSpec(spec);
  if (!s) throw new RangeError(`not a throttle spec: ${spec}`);
  return `lua-user-throttle-${name}:${s.limit}:${s.maxBurst}:${s.periodSeconds}`;
}
