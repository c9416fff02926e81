/** Suppression patterns: one address (`user@example.com`) or a whole domain (`*@example.com`). */
const PATTERN_RE = /^([^@\s*"<>,;]{1,64}|\*)@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

export function normalisePattern(input: string): string | null {
  let p = input.trim().toLowerCase();
  // "@example.com" and "example.com" are common ways of writing a whole domain
  if (p.startsWith('@')) p = `*${p}`;
  else if (!p.includes('@')) p = `*@${p}`;
  return p.length <= 320 && PATTERN_RE.test(p) ? p : null;
}

/** The patterns that would suppress `address`: itself and its domain wildcard. */
export function patternsFor(address: string): string[] {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  return at > 0 ? [a, `*${a.slice(at)}`] : [a];
}
