/**
 * Submission networks: address ranges whose clients submit for a tenant without SMTP AUTH. Such a
 * network is a credential, so it must be one a tenant's servers can really sit in: 0.0.0.0/0, ::/0 or a
 * /8 would hand the whole internet (or a provider's whole range) the tenant's name and budget, and no
 * two tenants' networks may overlap (the table enforces that), so a wide one would also squat on every
 * other tenant's addresses. Pure: the text of a CIDR in, a problem or null out.
 */

/** The widest network one tenant may bind: a /16 of IPv4 (65,536 addresses), a /48 of IPv6 (a site). */
export const WIDEST_PREFIX = { 4: 16, 6: 48 } as const;

function ipv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    // no leading zeros: some parsers read them as octal
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function ipv6(text: string): bigint | null {
  let groups: string[];
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const split = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = split(halves[0]!);
  const tail = halves.length === 2 ? split(halves[1]!) : [];
  // an IPv4 tail (::ffff:192.0.2.1) stands for the last two groups
  const last = (halves.length === 2 ? tail : head).at(-1);
  const v4 = last?.includes('.') ? ipv4(last) : null;
  if (last?.includes('.')) {
    if (v4 === null) return null;
    (halves.length === 2 ? tail : head).splice(-1, 1, ((v4 >> 16n) & 0xffffn).toString(16), (v4 & 0xffffn).toString(16));
  }
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(`0x${g}`);
  }
  return n;
}

/**
 * Why `cidr` cannot be a submission network, or null when it can.
 *
 * @example
 * submissionNetworkProblem('203.0.113.0/24') // null
 * submissionNetworkProblem('0.0.0.0/0')      // 'wider than /16: ...'
 */
export function submissionNetworkProblem(cidr: string): string | null {
  const m = /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return 'a network in CIDR notation, e.g. 203.0.113.0/28 or 2001:db8::/64';
  const family = m[1]!.includes(':') ? 6 : 4;
  const address = family === 4 ? ipv4(m[1]!) : ipv6(m[1]!);
  const bits = Number(m[2]);
  const size = family === 4 ? 32 : 128;
  if (address === null || bits > size) return 'a network in CIDR notation, e.g. 203.0.113.0/28 or 2001:db8::/64';
  if ((address & ((1n << BigInt(size - bits)) - 1n)) !== 0n) return 'the host bits of the network must be zero, e.g. 203.0.113.0/28, not 203.0.113.5/28';
  if (bits < WIDEST_PREFIX[family]) return `wider than /${WIDEST_PREFIX[family]}: a submission network lets anyone in it send as the tenant, so it must be no wider than the tenant's own servers`;
  return null;
}
