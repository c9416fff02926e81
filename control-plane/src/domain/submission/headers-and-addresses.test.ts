import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressDomain, mailboxAddresses } from './addresses.js';
import { checkAndRewriteHeaders, headerEnd, LANE_HEADER, TENANT_HEADER } from './message-headers.js';
import { relayCandidates, type RoutingIp } from './relay-routing.js';

describe('addresses', () => {
  it.each<[string, string | null]>([
    ['ann@Example.COM', 'example.com'],
    ['first.last+tag@mail.example.org', 'mail.example.org'],
    ['no-at-sign', null],
    ['@example.com', null],
    ['a b@example.com', null],
    ['a>@example.com', null],
    ['ann@example', null],
    ['ann@exa mple.com', null],
    ['ann@example.com> SIZE=1', null],
    ['"quoted"@example.com', null],
    ['ann@-bad.example.com', null],
    ['ann@example.com\r\nRCPT TO:<x@y.z>', null],
  ])('addressDomain(%j) = %j', (input, expected) => {
    expect(addressDomain(input)).toBe(expected);
  });

  it.each<[string, string[] | null]>([
    ['ann@example.com', ['ann@example.com']],
    ['"Ann, Sales" <ann@example.com>', ['ann@example.com']],
    ['Ann (the boss) <ann@example.com>', ['ann@example.com']],
    ['=?utf-8?q?Ann?= <ann@example.com>, bob@example.org', ['ann@example.com', 'bob@example.org']],
    ['Team: ann@example.com, bob@example.com;', ['ann@example.com', 'bob@example.com']],
    ['"evil@attacker.com" <ann@example.com>', ['ann@example.com']],
    ['evil@attacker.com <ann@example.com>', null],
    ['<ann@example.com', null],
    ['"unterminated <ann@example.com>', null],
    ['', null],
  ])('mailboxAddresses(%j) = %j', (input, expected) => {
    expect(mailboxAddresses(input)).toEqual(expected);
  });
});

const route = { tenantId: '6f1c2b7e-0000-4000-8000-000000000001', lane: 'external' as const, verifiedDomains: new Set(['example.com']) };

describe('the header block', () => {
  it('finds the blank line after CRLF or LF headers, and waits when it is not there yet', () => {
    expect(headerEnd(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody'))).toBe(14);
    expect(headerEnd(Buffer.from('A: 1\nB: 2\n\nbody'))).toBe(11);
    expect(headerEnd(Buffer.from('A: 1\r\nB: 2\r\n'))).toBe(-1);
  });

  it('puts the trusted headers first and strips every forged one, folded lines included', () => {
    const block = 'From: Ann <ann@example.com>\r\nX-KCP-Tenant: 00000000-0000-4000-8000-000000000666\r\nx-kcp-lane: warming\r\n\tcontinued\r\nSubject: hi\r\n X folded\r\nX-Kcp-Anything: 1\r\n\r\n';
    const r = checkAndRewriteHeaders(block, route);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.headers).toBe(`${TENANT_HEADER}: ${route.tenantId}\r\n${LANE_HEADER}: external\r\nFrom: Ann <ann@example.com>\r\nSubject: hi\r\n X folded\r\n\r\n`);
    expect(r.stripped).toEqual(['X-KCP-Tenant', 'x-kcp-lane', 'X-Kcp-Anything']);
  });

  it.each<[string, string]>([
    ['Subject: no from\r\n\r\n', '550 5.6.0 the message has no From header'],
    ['From: a@example.com\r\nFrom: b@example.com\r\n\r\n', '550 5.6.0 the message has more than one From header'],
    ['From: ann@other.example\r\n\r\n', '553 5.7.1 header From domain other.example is not a verified sending domain of this tenant'],
    ['From: ann@example.com, eve@evil.example\r\n\r\n', '553 5.7.1 header From domain evil.example is not a verified sending domain of this tenant'],
    ['From: ann@sub.example.com\r\n\r\n', '553 5.7.1 header From domain sub.example.com is not a verified sending domain of this tenant'],
    [' folded first\r\nFrom: ann@example.com\r\n\r\n', '550 5.6.0 the message starts with a folded header line'],
    ['From: ann@example.com\r\nnot a header\r\n\r\n', '550 5.6.0 the header block has a line that is not a header field'],
    ['From: undisclosed\r\n\r\n', '550 5.6.0 the From header is not a list of plain addresses'],
  ])('refuses %j', (block, reply) => {
    const r = checkAndRewriteHeaders(block, route);
    expect(r.ok ? 'accepted' : `${r.code} ${r.enhanced} ${r.message}`).toBe(reply);
  });

  it('property: whatever the tenant writes, the output has exactly one tenant and one lane header, ours', () => {
    const name = fc.constantFrom('X-KCP-Tenant', 'x-kcp-lane', 'X-Kcp-Tenant ', 'Subject', 'X-Other', 'x-kcp-');
    const value = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, ''));
    fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), (extra) => {
      const block = ['From: ann@example.com', ...extra.map(([n, v]) => `${n}: ${v}`)].join('\r\n') + '\r\n\r\n';
      const r = checkAndRewriteHeaders(block, route);
      if (!r.ok) return; // a name with a space is not a header field and is refused whole
      const out = r.headers.split('\r\n');
      expect(out.filter((l) => /^x-kcp-/i.test(l))).toEqual([`${TENANT_HEADER}: ${route.tenantId}`, `${LANE_HEADER}: external`]);
    }));
  });
});

describe('relay candidates', () => {
  const ips: RoutingIp[] = [
    { ipId: 'p1', nodeId: 'n-premium-a', tier: 'premium', carries: true },
    { ipId: 'p2', nodeId: 'n-premium-b', tier: 'premium', carries: true },
    { ipId: 'p3', nodeId: 'n-premium-c', tier: 'premium', carries: false },
    { ipId: 's1', nodeId: 'n-standard', tier: 'standard', carries: true },
    { ipId: 'r1', nodeId: 'n-rehab', tier: 'rehabilitation', carries: true },
    { ipId: 'q1', nodeId: 'n-quarantine', tier: 'quarantine', carries: true },
  ];
  const all = ['n-premium-a', 'n-premium-b', 'n-premium-c', 'n-standard', 'n-rehab', 'n-quarantine', 'n-empty'];

  it.each<[string, Parameters<typeof relayCandidates>[0], Parameters<typeof relayCandidates>[1], string[]]>([
    ['premium external: its shard first, then other premium nodes, never rehabilitation', 'external', { tier: 'premium', shardIpIds: ['p2', 'p3'] }, ['n-premium-b', 'n-premium-a']],
    ['standard external', 'external', { tier: 'standard', shardIpIds: [] }, ['n-standard']],
    ['warming lane: rehabilitation nodes, then the default pools', 'warming', { tier: 'premium', shardIpIds: ['p1'] }, ['n-rehab', 'n-quarantine', 'n-standard']],
    ['quarantined tenant', 'warming', { tier: 'quarantine', shardIpIds: [] }, ['n-quarantine', 'n-rehab']],
  ])('%s', (_n, lane, tenant, expected) => {
    expect(relayCandidates(lane, tenant, ips, all)).toEqual(expected);
  });

  it('falls back to every node when no node has a fitting IP', () => {
    expect(relayCandidates('external', { tier: 'premium', shardIpIds: [] }, ips.filter((ip) => ip.tier !== 'premium'), ['b', 'a'])).toEqual(['a', 'b']);
  });
});
