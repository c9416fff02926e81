/**
 * Weighted rendezvous (highest-random-weight) hashing of tenants onto IPs. For every (tenant, IP) pair
 * a hash h in (0, 1) gives the score -weight / ln(h); a tenant's shard is its k best-scoring IPs.
 *
 * Why this and not modulo hashing: the same inputs always give the same shard (no state, any replica
 * computes it), an IP is chosen first with probability weight / total weight, and adding or removing
 * one IP of n moves only the tenants for which that IP is (or was) in the top k: about k/n of them,
 * and about 1/n change their first IP. A modulo scheme reshuffles almost everyone.
 */
import { createHash } from 'node:crypto';

export interface ShardCandidate {
  id: string;
  weight: number;
}

export interface ShardMember {
  id: string;
  weight: number;
  /** the member's rank in the tenant's preference order, 0 = first */
  rank: number;
}

/** A uniform number in (0, 1) from the pair, from 53 bits of SHA-256. */
export function pairHash(tenantId: string, ipId: string): number {
  const d = createHash('sha256').update(tenantId).update('\u0000').update(ipId).digest();
  const hi = d.readUInt32BE(0) >>> 5; // 27 bits
  const lo = d.readUInt32BE(4) >>> 6; // 26 bits
  return (hi * 67108864 + lo + 0.5) / 9007199254740992;
}

export function rendezvousScore(tenantId: string, ip: ShardCandidate): number {
  if (ip.weight <= 0) return Number.NEGATIVE_INFINITY;
  return -ip.weight / Math.log(pairHash(tenantId, ip.id));
}

/** The tenant's shard: the k best IPs by weighted rendezvous score, best first (ties by id). */
export function assignShard(tenantId: string, candidates: readonly ShardCandidate[], k: number): ShardMember[] {
  return candidates
    .filter((c) => c.weight > 0)
    .map((c) => ({ c, s: rendezvousScore(tenantId, c) }))
    .sort((a, b) => b.s - a.s || (a.c.id < b.c.id ? -1 : 1))
    .slice(0, Math.max(0, k))
    .map(({ c }, rank) => ({ id: c.id, weight: c.weight, rank }));
}
