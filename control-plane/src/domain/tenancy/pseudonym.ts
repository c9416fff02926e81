/**
 * Public leaderboard names such as `Sender_048842`. Derived from the tenant id with a keyed hash, so
 * without the key nobody can map a pseudonym back to a tenant or enumerate them; stable for ever,
 * because the id and the key do not change. `attempt` moves to another name when two tenants collide.
 */
import { createHmac } from 'node:crypto';

export function derivePseudonym(key: Buffer, tenantId: string, attempt = 0): string {
  const mac = createHmac('sha256', key).update(attempt === 0 ? tenantId : `${tenantId}#${attempt}`).digest();
  return `Sender_${String(mac.readUInt32BE(0) % 1_000_000).padStart(6, '0')}`;
}
