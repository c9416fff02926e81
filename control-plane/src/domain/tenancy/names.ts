/**
 * Validation of the names tenants and operators type. These reach KumoMTA queue names, generated Lua,
 * DNS and SMTP, so the accepted alphabet is deliberately narrow; the database repeats the same checks.
 */
export const SLUG_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const HOSTNAME_RE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 5322 dot-atom characters; quoted local parts are refused for submission identities. */
export const LOCAL_PART_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;

export function isHostname(value: string): boolean {
  return value.length <= 253 && HOSTNAME_RE.test(value);
}

/** Lower-cases and strips one trailing dot; returns null when the result is not a host name. */
export function normaliseDomain(value: string): string | null {
  const d = value.trim().toLowerCase().replace(/\.$/, '');
  return isHostname(d) ? d : null;
}
