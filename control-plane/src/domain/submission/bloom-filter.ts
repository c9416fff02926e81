/**
 * A Bloom filter of strings: "certainly not in the set" or "maybe". The gateway keeps one of every
 * suppression pattern so that the common recipient, suppressed nowhere, needs no database round
 * trip; a "maybe" is always confirmed in PostgreSQL, so a false positive costs a query, never a
 * wrong refusal. Pure: the caller feeds it.
 */
export class BloomFilter {
  private readonly bits: Uint32Array;
  readonly size: number;
  readonly hashes: number;
  count = 0;

  /** Sized for `capacity` entries at false-positive rate `rate`. */
  constructor(readonly capacity: number, rate = 0.01) {
    const m = Math.max(64, Math.ceil((-capacity * Math.log(rate)) / Math.LN2 ** 2));
    this.size = Math.ceil(m / 32) * 32;
    this.hashes = Math.max(1, Math.round((this.size / Math.max(1, capacity)) * Math.LN2));
    this.bits = new Uint32Array(this.size / 32);
  }

  add(value: string): void {
    const [h1, h2] = hashPair(value);
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + Math.imul(i, h2)) >>> 0;
      const idx = bit % this.size;
      this.bits[idx >>> 5]! |= 1 << (idx & 31);
    }
    this.count++;
  }

  mightContain(value: string): boolean {
    const [h1, h2] = hashPair(value);
    for (let i = 0; i < this.hashes; i++) {
      const idx = ((h1 + Math.imul(i, h2)) >>> 0) % this.size;
      if ((this.bits[idx >>> 5]! & (1 << (idx & 31))) === 0) return false;
    }
    return true;
  }
}

/** Two independent 32-bit hashes (FNV-1a and a murmur-style mix) for double hashing. */
function hashPair(value: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  b = Math.imul(b ^ (b >>> 15), 0x2c1b3c6d);
  return [a >>> 0, (b | 1) >>> 0];
}

/** The keys under which a suppression of `pattern` (for a tenant, or null: global) is filed. */
export const suppressionKey = (tenantId: string | null, pattern: string): string => `${tenantId ?? '*'} ${pattern}`;
