/**
 * Who a limit on failed authentications counts: one rule for the API and the SMTP gateway, so that an
 * IPv6 host, which holds a whole /64, cannot spread its guesses over 2^64 counters. Pure.
 */

/**
 * The client a failure is counted against, by the API's token check and the gateway's AUTH alike: an
 * IPv4 address as it is (an IPv4-mapped IPv6 address as its IPv4), an IPv6 address as its /64, written
 * as the first four groups.
 *
 * @example
 * clientKey('::ffff:203.0.113.7') // 'ip:203.0.113.7'
 * clientKey('2001:db8:0:1::42')    // 'ip6:2001:db8:0:1::/64'
 */
export function clientKey(address: string | null | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return `ip:${mapped[1]}`;
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(a)) return `ip:${a}`;
  if (!a.includes(':')) return 'unknown';
  const [head, tail] = a.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  const first = groups.slice(0, 4).map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? g.replace(/^0+(?=.)/, '') : '0'));
  while (first.length < 4) first.push('0');
  return `ip6:${first.join(':')}::/64`;
}
