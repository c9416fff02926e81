/**
 * Every Redis key the control plane reads or writes, in one place. Redis is shared with the KumoMTA
 * nodes, so the control plane's own keys all start with `kcp:`, and the keys it reads of kumod's are
 * built exactly as kumod builds them (that format lives beside the throttle names the policy renderer
 * gives kumod, in domain/policy/throttles.ts, and is re-exported here).
 *
 * Nothing a stranger typed is stored in a key name: usernames are hashed, addresses are never keys.
 */
import { createHash } from 'node:crypto';

export { externalThrottleName, namedThrottleRedisKey, throttleRedisKey } from '../../domain/policy/throttles.js';

const PREFIX = 'kcp:';

/** 32 hex digits of SHA-256: enough to tell usernames apart, nothing to read back. */
const hashed = (text: string): string => createHash('sha256').update(text.toLowerCase()).digest('hex').slice(0, 32);

/**
 * SMTP AUTH failure counters (each expires CP_SMTP_AUTH_LOCKOUT_SECONDS after its last failure):
 * one per (username, client) pair and one per client, which lock out, and one per username from
 * anywhere, which only slows that username down. `client` is domain/access/client-key.ts's (an IPv4
 * address, an IPv6 /64).
 */
export const authFailureKeys = (client: string, username: string): { pair: string; source: string; user: string } => ({
  pair: `${PREFIX}smtp-auth-fail:pair:${hashed(username)}:${client}`,
  source: `${PREFIX}smtp-auth-fail:ip:${client}`,
  user: `${PREFIX}smtp-auth-fail:user:${hashed(username)}`,
});

/** How many warming-network recipients the gateway took from a tenant's own mail on a UTC day. */
export const warmingAcceptedKey = (tenantId: string, day: string): string => `${PREFIX}warming-accepted:${tenantId}:${day}`;

/**
 * Failed bearer-token authentications on the API from one client (an IPv4 address, or an IPv6 /64:
 * one host holds a whole /64), counted for CP_HTTP_AUTH_FAILURE_WINDOW_SECONDS from the first.
 */
export const apiAuthFailureKey = (client: string): string => `${PREFIX}api-auth-fail:${client}`;
