/**
 * Lookups that many sessions make at once, gathered for one event-loop turn and answered with one
 * round trip. Under load a batch holds the lookups of every session that reached the same point in
 * the same turn; alone, a lookup waits for nothing (setImmediate, no timer), so latency stays the
 * round trip's. Identical keys in a batch share one answer.
 */
export class TickBatcher<K, V> {
  private pending = new Map<string, { key: K; waiters: { resolve: (v: V) => void; reject: (e: unknown) => void }[] }>();
  private scheduled = false;

  constructor(
    private readonly load: (keys: K[]) => Promise<V[]>,
    private readonly identity: (key: K) => string,
    private readonly maxBatch = 500,
  ) {}

  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const id = this.identity(key);
      const entry = this.pending.get(id);
      if (entry) entry.waiters.push({ resolve, reject });
      else this.pending.set(id, { key, waiters: [{ resolve, reject }] });
      if (this.pending.size >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.load(batch.map((b) => b.key)).then(
      (values) => batch.forEach((b, i) => b.waiters.forEach((w) => w.resolve(values[i]!))),
      (e: unknown) => batch.forEach((b) => b.waiters.forEach((w) => w.reject(e))),
    );
  }
}
