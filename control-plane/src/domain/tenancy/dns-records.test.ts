import { describe, expect, it } from 'vitest';
import { buildDnsRecords, type DnsRecordInputs } from './dns-records.js';

const base: DnsRecordInputs = {
  domain: 'example.com',
  selector: 'kcp1',
  algorithm: 'rsa-sha256',
  publicKeyDns: 'A'.repeat(392),
  spfInclude: null,
  ips: ['203.0.113.9', '2001:db8::1', '198.51.100.7'],
  bounceMxHost: null,
  dmarcPolicy: 'none',
  dmarcRua: null,
};

const byPurpose = (i: DnsRecordInputs) => Object.fromEntries(buildDnsRecords(i).map((r) => [r.purpose, r]));

describe('buildDnsRecords', () => {
  it.each([
    ['lists the fleet IPs, sorted, when no include is configured', {}, 'example.com', 'v=spf1 ip4:198.51.100.7 ip4:203.0.113.9 ip6:2001:db8::1 ~all'],
    ['uses include: when configured', { spfInclude: '_spf.mta.example.net' }, 'example.com', 'v=spf1 include:_spf.mta.example.net ~all'],
    ['moves SPF to the return-path subdomain when a bounce MX exists', { bounceMxHost: 'bounce.mta.example.net' }, 'bounces.example.com', 'v=spf1 ip4:198.51.100.7 ip4:203.0.113.9 ip6:2001:db8::1 ~all'],
    ['with no IPs yet, SPF still ends in ~all', { ips: [] }, 'example.com', 'v=spf1 ~all'],
  ] as const)('SPF %s', (_name, over, name, value) => {
    const spf = byPurpose({ ...base, ...over }).spf!;
    expect(spf).toMatchObject({ type: 'TXT', name, value });
  });

  it('publishes DKIM under selector._domainkey with the key type', () => {
    expect(byPurpose(base).dkim).toMatchObject({ name: 'kcp1._domainkey.example.com', value: `v=DKIM1; k=rsa; p=${'A'.repeat(392)}` });
    expect(byPurpose({ ...base, algorithm: 'ed25519-sha256', publicKeyDns: 'B'.repeat(44) }).dkim!.value).toBe(`v=DKIM1; k=ed25519; p=${'B'.repeat(44)}`);
  });

  it('splits long TXT values into 255-octet strings in the zone line, keeping the value whole', () => {
    const dkim = byPurpose(base).dkim!;
    const strings = [...dkim.zone_line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    expect(strings.length).toBe(2);
    expect(strings.every((s) => s.length <= 255)).toBe(true);
    expect(strings.join('')).toBe(dkim.value);
  });

  it('writes DMARC with the policy and optional aggregate-report address', () => {
    expect(byPurpose(base).dmarc).toMatchObject({ name: '_dmarc.example.com', value: 'v=DMARC1; p=none; adkim=r; aspf=r' });
    expect(byPurpose({ ...base, dmarcPolicy: 'reject', dmarcRua: 'dmarc@example.net' }).dmarc!.value).toBe(
      'v=DMARC1; p=reject; adkim=r; aspf=r; rua=mailto:dmarc@example.net',
    );
  });

  it('adds an MX for the return path only when an inbound bounce host exists', () => {
    expect(byPurpose(base).return_path_mx).toBeUndefined();
    expect(byPurpose({ ...base, bounceMxHost: 'bounce.mta.example.net' }).return_path_mx).toMatchObject({
      type: 'MX',
      name: 'bounces.example.com',
      value: '10 bounce.mta.example.net.',
    });
  });
});
