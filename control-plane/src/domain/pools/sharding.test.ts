import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignShard, pairHash, type ShardCandidate } from './sharding.js';

const ips = (n: number, weight = 100): ShardCandidate[] => Array.from({ length: n }, (_, i) => ({ id: `ip-${i}`, weight }));
const tenants = (n: number, salt = ''): string[] => Array.from({ length: n }, (_, i) => `tenant-${salt}${i}`);

describe('weighted rendezvous sharding', () => {
  it('pair hashes are in (0, 1) and look uniform', () => {
    const xs = tenants(20000).map((t) => pairHash(t, 'ip-x'));
    expect(Math.min(...xs)).toBeGreaterThan(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
  });

  it('is deterministic and independent of candidate order', () => {
    fc.assert(fc.property(fc.uuid(), fc.shuffledSubarray(ips(12), { minLength: 3 }), fc.integer({ min: 1, max: 4 }), (t, cands, k) => {
      const a = assignShard(t, cands, k);
      expect(assignShard(t, [...cands].reverse(), k)).toEqual(a);
      expect(a).toHaveLength(Math.min(k, cands.length));
      expect(new Set(a.map((m) => m.id)).size).toBe(a.length);
    }));
  });

  it('never picks a zero-weight IP; a shard is drawn only from the candidates given (tiers cannot mix)', () => {
    const premium = ips(4).map((ip) => ({ ...ip, id: `premium-${ip.id}` }));
    fc.assert(fc.property(fc.uuid(), (t) => {
      const shard = assignShard(t, [...premium, { id: 'dead', weight: 0 }], 8);
      expect(shard.every((m) => m.id.startsWith('premium-'))).toBe(true);
    }));
  });

  it('balances load within 10% of each IP\'s weight share (20 000 tenants, 16 IPs)', () => {
    const cands = ips(16);
    const count = new Map<string, number>();
    for (const t of tenants(20000)) {
      const first = assignShard(t, cands, 1)[0]!.id;
      count.set(first, (count.get(first) ?? 0) + 1);
    }
    const expected = 20000 / 16;
    for (const c of cands) expect(Math.abs((count.get(c.id) ?? 0) - expected) / expected).toBeLessThan(0.1);
  });

  it('respects weights: an IP with twice the weight gets about twice the tenants', () => {
    const cands = [{ id: 'heavy', weight: 200 }, { id: 'light-1', weight: 100 }, { id: 'light-2', weight: 100 }];
    let heavy = 0;
    for (const t of tenants(20000)) if (assignShard(t, cands, 1)[0]!.id === 'heavy') heavy++;
    expect(heavy / 20000).toBeGreaterThan(0.47);
    expect(heavy / 20000).toBeLessThan(0.53);
  });

  it('property: adding one IP to n moves about 1/(n+1) of first choices and at most about k/(n+1) of shards', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 24 }), fc.integer({ min: 1, max: 3 }), fc.string({ minLength: 1, maxLength: 6 }), (n, k, salt) => {
        const before = ips(n);
        const after = [...before, { id: `ip-new-${salt}`, weight: 100 }];
        const ts = tenants(3000, salt);
        let firstMoved = 0;
        let shardMoved = 0;
        for (const t of ts) {
          const a = assignShard(t, before, k);
          const b = assignShard(t, after, k);
          if (a[0]!.id !== b[0]!.id) firstMoved++;
          if (a.map((m) => m.id).sort().join() !== b.map((m) => m.id).sort().join()) shardMoved++;
          // whatever moved, moved to the new IP: nobody is reshuffled among the old ones
          if (a[0]!.id !== b[0]!.id) expect(b[0]!.id).toBe(`ip-new-${salt}`);
        }
        const share = 1 / (n + 1);
        expect(firstMoved / ts.length).toBeLessThan(share * 1.35 + 0.01);
        expect(firstMoved / ts.length).toBeGreaterThan(share * 0.65 - 0.01);
        expect(shardMoved / ts.length).toBeLessThan((k * share) * 1.35 + 0.01);
      }),
      { numRuns: 25 },
    );
  });

  it('property: removing one IP moves only the tenants that had it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 20 }), fc.nat(), fc.integer({ min: 1, max: 3 }), (n, which, k) => {
        const before = ips(n);
        const gone = before[which % n]!.id;
        const after = before.filter((c) => c.id !== gone);
        for (const t of tenants(500, String(which))) {
          const a = assignShard(t, before, k).map((m) => m.id);
          const b = assignShard(t, after, k).map((m) => m.id);
          if (!a.includes(gone)) expect(b).toEqual(a);
          else expect(b.filter((x) => x !== gone).slice(0, a.length - 1)).toEqual(a.filter((x) => x !== gone));
        }
      }),
      { numRuns: 25 },
    );
  });
});
