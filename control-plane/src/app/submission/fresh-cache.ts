/**
 * A cache that never answers with a value older than its TTL. Age counts from when the read behind a
 * value *started* (what PostgreSQL said at that moment), and a value built on another cached value
 * (tenant facts on the fleet) is as old as the older of the two.
 *
 * - Younger than half the TTL: the value answers.
 * - Between half the TTL and the TTL: the value still answers, and one reload starts behind it
 *   (refresh-ahead), so a busy key is replaced before it expires and nobody waits for it.
 * - Past the TTL, or never read: the caller waits for a read; concurrent callers share one, and a
 *   failed read rejects them all and is not kept.
 *
 * `invalidate`/`clear` drop entries at once (a change notification). A read that started before
 * the drop may still answer the callers already waiting on it, but never enters the cache: each
 * entry carries a generation, and a read stores its result only over the generation it started
 * from.
 */

export interface Stamped<T> {
  value: T;
  /** clock time at which the oldest read behind `value` started */
  asOf: number;
}

/** A read; it may report an `asOf` older than its own start when it used other cached values. */
export type StampedLoad<T> = () => Promise<{ value: T; asOf?: number }>;

interface Entry<T> {
  generation: number;
  /** the start of the read, until it settles; then that read's `asOf` */
  asOf: number;
  value: Promise<Stamped<T>>;
  settled: boolean;
  refreshing: boolean;
}

export class FreshCache<K, T> {
  private readonly entries = new Map<K, Entry<T>>();
  private generation = 0;

  constructor(
    readonly ttlMs: number,
    /** monotonic milliseconds */
    private readonly clock: () => number = () => performance.now(),
    private readonly maxEntries = 50_000,
    /** a refresh-ahead that failed (nobody waits for it, so nobody else hears of it) */
    private readonly onRefreshError: (e: Error) => void = () => {},
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: K, load: () => Promise<T>): Promise<T> {
    return this.stamped(key, async () => ({ value: await load() })).then((s) => s.value);
  }

  stamped(key: K, load: StampedLoad<T>): Promise<Stamped<T>> {
    if (this.ttlMs <= 0) return this.read(load, this.clock());
    const now = this.clock();
    const hit = this.entries.get(key);
    if (hit && now - hit.asOf < this.ttlMs) {
      if (hit.settled && !hit.refreshing && now - hit.asOf >= this.ttlMs / 2) this.refreshAhead(key, hit, load, now);
      return hit.value;
    }
    return this.start(key, load, now);
  }

  /** Read now, whatever is cached, and cache the result: for a caller that has reason to doubt it. */
  reload(key: K, load: StampedLoad<T>): Promise<Stamped<T>> {
    return this.ttlMs <= 0 ? this.read(load, this.clock()) : this.start(key, load, this.clock());
  }

  invalidate(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  private read(load: StampedLoad<T>, startedAt: number): Promise<Stamped<T>> {
    return (async () => {
      const r = await load();
      return { value: r.value, asOf: Math.min(startedAt, r.asOf ?? startedAt) };
    })();
  }

  private start(key: K, load: StampedLoad<T>, now: number): Promise<Stamped<T>> {
    const generation = ++this.generation;
    const value = this.read(load, now);
    const entry: Entry<T> = { generation, asOf: now, value, settled: false, refreshing: false };
    this.entries.set(key, entry);
    value.then(
      (s) => {
        if (this.entries.get(key)?.generation !== generation) return;
        entry.asOf = s.asOf;
        entry.settled = true;
      },
      () => {
        if (this.entries.get(key)?.generation === generation) this.entries.delete(key);
      },
    );
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
    return value;
  }

  private refreshAhead(key: K, hit: Entry<T>, load: StampedLoad<T>, now: number): void {
    hit.refreshing = true;
    this.read(load, now).then(
      (s) => {
        // dropped (or replaced) while the read ran: what it read may predate the change
        if (this.entries.get(key)?.generation !== hit.generation) return;
        this.entries.set(key, { generation: ++this.generation, asOf: s.asOf, value: Promise.resolve(s), settled: true, refreshing: false });
      },
      (e: Error) => {
        hit.refreshing = false;
        this.onRefreshError(e);
      },
    );
  }
}
