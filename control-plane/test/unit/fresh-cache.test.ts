/**
 * The gateway's fact cache on a fake clock: never a value past its TTL, refresh-ahead past half of
 * it, a failed read is a failure (not the old value), and an invalidation beats a read already under
 * way.
 */
import { describe, expect, it } from 'vitest';
import { FreshCache } from '../../src/app/submission/fresh-cache.js';

/** A read the test settles by hand, counting how many were started. */
function manualLoads<T>() {
  const pending: { resolve: (v: T) => void; reject: (e: Error) => void }[] = [];
  return {
    started: () => pending.length,
    load: () => new Promise<T>((resolve, reject) => pending.push({ resolve, reject })),
    resolve: (i: number, v: T) => pending[i]!.resolve(v),
    reject: (i: number, e: Error) => pending[i]!.reject(e),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

function setup(ttlMs = 1000) {
  let now = 0;
  const refreshErrors: Error[] = [];
  const cache = new FreshCache<string, string>(ttlMs, () => now, 100, (e) => refreshErrors.push(e));
  return { cache, refreshErrors, at: (t: number) => (now = t) };
}

describe('FreshCache', () => {
  it('answers from the cache while the value is young, with one read for concurrent callers', async () => {
    const { cache, at } = setup();
    const l = manualLoads<string>();
    const a = cache.get('t', l.load);
    const b = cache.get('t', l.load);
    expect(l.started()).toBe(1);
    l.resolve(0, 'v1');
    expect(await a).toBe('v1');
    expect(await b).toBe('v1');
    at(499);
    expect(await cache.get('t', l.load)).toBe('v1');
    expect(l.started()).toBe(1);
  });

  it('past half the TTL answers with the valid value and reloads behind it', async () => {
    const { cache, at } = setup();
    const l = manualLoads<string>();
    const first = cache.get('t', l.load);
    l.resolve(0, 'v1');
    await first;
    at(600);
    expect(await cache.get('t', l.load)).toBe('v1');
    expect(l.started()).toBe(2);
    // one refresh at a time
    expect(await cache.get('t', l.load)).toBe('v1');
    expect(l.started()).toBe(2);
    l.resolve(1, 'v2');
    await tick();
    // the refreshed value is as old as its read's start (600): young at 1099, due a refresh at 1100
    at(1099);
    expect(await cache.get('t', l.load)).toBe('v2');
    expect(l.started()).toBe(2);
    at(1100);
    expect(await cache.get('t', l.load)).toBe('v2');
    expect(l.started()).toBe(3);
  });

  it('never answers past the TTL: the caller waits for a read, and a failed read rejects', async () => {
    const { cache, at } = setup();
    const l = manualLoads<string>();
    const first = cache.get('t', l.load);
    l.resolve(0, 'v1');
    await first;
    at(1000);
    const late = cache.get('t', l.load);
    expect(l.started()).toBe(2);
    l.reject(1, new Error('database unreachable'));
    await expect(late).rejects.toThrow('database unreachable');
    // the failure is not kept: the next caller reads again
    const again = cache.get('t', l.load);
    expect(l.started()).toBe(3);
    l.resolve(2, 'v3');
    expect(await again).toBe('v3');
  });

  it('counts age from when the read started, not when it finished', async () => {
    const { cache, at } = setup();
    const l = manualLoads<string>();
    const first = cache.get('t', l.load);
    at(900);
    l.resolve(0, 'slow');
    await first;
    at(1000);
    void cache.get('t', l.load);
    expect(l.started()).toBe(2);
  });

  it('a failed refresh-ahead is reported, and the value still expires at its TTL', async () => {
    const { cache, at, refreshErrors } = setup();
    const l = manualLoads<string>();
    const first = cache.get('t', l.load);
    l.resolve(0, 'v1');
    await first;
    at(700);
    expect(await cache.get('t', l.load)).toBe('v1');
    l.reject(1, new Error('gone'));
    await tick();
    expect(refreshErrors.map((e) => e.message)).toEqual(['gone']);
    at(1001);
    const late = cache.get('t', l.load);
    l.reject(2, new Error('still gone'));
    await expect(late).rejects.toThrow('still gone');
  });

  it('an invalidation drops the entry at once, and a read begun before it does not put the old value back', async () => {
    const { cache, at } = setup();
    const l = manualLoads<string>();
    const first = cache.get('t', l.load);
    l.resolve(0, 'before');
    await first;
    at(600);
    await cache.get('t', l.load); // starts a refresh-ahead (read 1), still reading the old state
    cache.invalidate('t');
    const after = cache.get('t', l.load); // read 2, after the change
    expect(l.started()).toBe(3);
    l.resolve(1, 'stale'); // the refresh begun before the invalidation finishes last-but-one
    await tick();
    l.resolve(2, 'after');
    expect(await after).toBe('after');
    expect(await cache.get('t', l.load)).toBe('after');
  });

  it('a first read under way when the entry is invalidated answers its own callers but is not cached', async () => {
    const { cache } = setup();
    const l = manualLoads<string>();
    const waiting = cache.get('t', l.load);
    cache.clear();
    l.resolve(0, 'pre-change');
    expect(await waiting).toBe('pre-change');
    const next = cache.get('t', l.load);
    expect(l.started()).toBe(2);
    l.resolve(1, 'post-change');
    expect(await next).toBe('post-change');
  });

  it('a value built on an older cached value is as old as that one', async () => {
    const { cache, at } = setup();
    at(5000);
    await cache.stamped('t', async () => ({ value: 'built on a fleet read at 4200', asOf: 4200 }));
    at(5199);
    const l = manualLoads<string>();
    // 999 ms old, past half the TTL: it answers, and a refresh starts behind it
    expect(await cache.get('t', l.load)).toBe('built on a fleet read at 4200');
    expect(l.started()).toBe(1);
    at(5200);
    void cache.get('t', l.load);
    expect(l.started()).toBe(2);
  });

  it('with a TTL of 0 every call reads', async () => {
    const { cache } = setup(0);
    let reads = 0;
    const load = async () => `v${++reads}`;
    expect(await cache.get('t', load)).toBe('v1');
    expect(await cache.get('t', load)).toBe('v2');
    expect(cache.size).toBe(0);
  });
});
