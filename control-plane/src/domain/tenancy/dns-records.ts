/**
 * The DNS records a tenant publishes for a sending domain. Pure: the caller supplies the key, the
 * selector and the fleet facts; nothing here looks anything up.
 */
export interface DnsRecord {
  type: 'TXT' | 'MX';
  name: string;
  value: string;
  /** the record as a zone-file line; TXT values over 255 octets split into quoted strings (RFC 7208 §3.3) */
  zone_line: string;
  purpose: 'spf' | 'dkim' | 'dmarc' | 'return_path_mx';
}

export interface DnsRecordInputs {
  domain: string;
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  publicKeyDns: string;
  /** `include:` target; when null the SPF record lists `ips` */
  spfInclude: string | null;
  ips: readonly string[];
  bounceMxHost: string | null;
  dmarcPolicy: 'none' | 'quarantine' | 'reject';
  dmarcRua: string | null;
}

/** Where bounces return to: a subdomain with its own MX when the platform runs an inbound listener. */
export function returnPathDomain(domain: string, bounceMxHost: string | null): string {
  return bounceMxHost ? `bounces.${domain}` : domain;
}

export function buildDnsRecords(i: DnsRecordInputs): DnsRecord[] {
  const records: DnsRecord[] = [];
  const rp = returnPathDomain(i.domain, i.bounceMxHost);
  if (i.bounceMxHost) records.push(mx(rp, 10, i.bounceMxHost));

  const mechanisms = i.spfInclude
    ? [`include:${i.spfInclude}`]
    : [...i.ips].sort(compareIps).map((ip) => (ip.includes(':') ? `ip6:${ip}` : `ip4:${ip}`));
  // ~all rather than -all: DMARC, not SPF, should be what decides rejection for aligned mail
  records.push(txt(rp, ['v=spf1', ...mechanisms, '~all'].join(' '), 'spf'));

  const k = i.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  records.push(txt(`${i.selector}._domainkey.${i.domain}`, `v=DKIM1; k=${k}; p=${i.publicKeyDns}`, 'dkim'));

  const dmarc = ['v=DMARC1', `p=${i.dmarcPolicy}`, 'adkim=r', 'aspf=r'];
  if (i.dmarcRua) dmarc.push(`rua=mailto:${i.dmarcRua}`);
  records.push(txt(`_dmarc.${i.domain}`, dmarc.join('; '), 'dmarc'));
  return records;
}

function txt(name: string, value: string, purpose: DnsRecord['purpose']): DnsRecord {
  const chunks: string[] = [];
  for (let at = 0; at < value.length; at += 255) chunks.push(`"${value.slice(at, at + 255)}"`);
  return { type: 'TXT', name, value, zone_line: `${name}. IN TXT ${chunks.join(' ')}`, purpose };
}

function mx(name: string, preference: number, host: string): DnsRecord {
  const value = `${preference} ${host}.`;
  return { type: 'MX', name, value, zone_line: `${name}. IN MX ${value}`, purpose: 'return_path_mx' };
}

/** IPv4 before IPv6, IPv4 in numeric order, so the record reads naturally and is stable. */
function compareIps(a: string, b: string): number {
  const key = (ip: string): string =>
    ip.includes(':') ? `6:${ip}` : `4:${ip.split('.').map((o) => o.padStart(3, '0')).join('.')}`;
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
