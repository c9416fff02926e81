import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressDomain, mailboxAddresses } from './addresses.js';
import { checkAndRewriteHeaders, headerEnd, LANE_HEADER, rfc5322Date, TENANT_HEADER } from './message-headers.js';
import { endLines, newLineScan, scanLines, type LineProblem } from './data-lines.js';
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
const defaults = { messageIdToken: 'tok123', now: new Date('2026-12-01T10:00:00Z') };
const ID_AND_DATE = 'Message-ID: <x@example.com>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n';

describe('the header block', () => {
  it('finds the blank line after CRLF or LF headers, and waits when it is not there yet', () => {
    expect(headerEnd(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody'))).toBe(14);
    expect(headerEnd(Buffer.from('A: 1\nB: 2\n\nbody'))).toBe(11);
    expect(headerEnd(Buffer.from('A: 1\r\nB: 2\r\n'))).toBe(-1);
  });

  it('puts the trusted headers first and strips every forged one, folded lines included', () => {
    const block = `From: Ann <ann@example.com>\r\nX-KCP-Tenant: 00000000-0000-4000-8000-000000000666\r\nx-kcp-lane: warming\r\n\tcontinued\r\nSubject: hi\r\n X folded\r\nX-Kcp-Anything: 1\r\nX-KumoRef: e30=\r\n${ID_AND_DATE}\r\n`;
    const r = checkAndRewriteHeaders(block, route, defaults);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.headers).toBe(`${TENANT_HEADER}: ${route.tenantId}\r\n${LANE_HEADER}: external\r\nFrom: Ann <ann@example.com>\r\nSubject: hi\r\n X folded\r\n${ID_AND_DATE}\r\n`);
    expect(r.stripped).toEqual(['X-KCP-Tenant', 'x-kcp-lane', 'X-Kcp-Anything', 'X-KumoRef']);
    expect(r.added).toEqual([]);
  });

  it('adds Message-ID (on the From domain) and Date when the submission lacks them, and only then', () => {
    const r = checkAndRewriteHeaders('From: ann@example.com\r\nSubject: hi\r\n\r\n', route, defaults);
    expect(r.ok && r.added).toEqual(['Message-ID: <tok123@example.com>', 'Date: Tue, 01 Dec 2026 10:00:00 +0000']);
    expect(r.ok && r.headers.endsWith('Subject: hi\r\nMessage-ID: <tok123@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n')).toBe(true);
    const withDate = checkAndRewriteHeaders('From: ann@example.com\r\ndate: Mon, 30 Nov 2026 08:00:00 -0500\r\n\r\n', route, defaults);
    expect(withDate.ok && withDate.added).toEqual(['Message-ID: <tok123@example.com>']);
  });

  it.each<[string, string]>([
    ['2026-12-01T10:00:00Z', 'Tue, 01 Dec 2026 10:00:00 +0000'],
    ['2027-01-09T03:04:05.678Z', 'Sat, 09 Jan 2027 03:04:05 +0000'],
  ])('formats %s as an RFC 5322 date', (iso, text) => {
    expect(rfc5322Date(new Date(iso))).toBe(text);
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
    ['From: ann@example.com\r\nSender: ceo@other.example\r\n\r\n', '553 5.7.1 header Sender domain other.example is not a verified sending domain of this tenant'],
    ['From: ann@example.com\r\nsender: a@example.com\r\nSender: b@example.com\r\n\r\n', '550 5.6.0 the message has more than one Sender header'],
    ['From: ann@example.com\r\nSender: a@example.com, b@example.com\r\n\r\n', '550 5.6.0 the Sender header is not one plain address'],
    ['From: ann@example.com\r\nResent-From: Eve <eve@evil.example>\r\n\r\n', '553 5.7.1 header Resent-From domain evil.example is not a verified sending domain of this tenant'],
    ['From: ann@example.com\r\nResent-From: ann@example.com\r\nResent-Sender: eve@evil.example\r\n\r\n', '553 5.7.1 header Resent-Sender domain evil.example is not a verified sending domain of this tenant'],
    ['From: ann@example.com\r\nResent-Sender: undisclosed\r\n\r\n', '550 5.6.0 the Resent-Sender header is not one plain address'],
    ['From: ann@example.com\r\nSubject: hi\rX-KCP-Tenant: 00000000-0000-4000-8000-000000000666\r\n\r\n', '550 5.6.0 the message has a bare CR: every line must end in CRLF, and CR may appear nowhere else'],
    ['From: ann@example.com\nX-KCP-Lane: warming\r\n\r\n', '550 5.6.0 the message has a bare LF: every line must end in CRLF, and LF may appear nowhere else'],
  ])('refuses %j', (block, reply) => {
    const r = checkAndRewriteHeaders(block, route, defaults);
    expect(r.ok ? 'accepted' : `${r.code} ${r.enhanced} ${r.text}`).toBe(reply);
  });

  it('keeps Sender and Resent-* headers on verified domains as they are', () => {
    const r = checkAndRewriteHeaders(`From: ann@example.com\r\nSender: Ops <ops@example.com>\r\nResent-From: a@example.com, b@example.com\r\nResent-Date: x\r\n${ID_AND_DATE}\r\n`, route, defaults);
    expect(r.ok && r.headers).toContain('Sender: Ops <ops@example.com>\r\nResent-From: a@example.com, b@example.com\r\nResent-Date: x\r\n');
  });

  it('property: whatever the tenant writes, the output has exactly one tenant and one lane header, ours', () => {
    const name = fc.constantFrom('X-KCP-Tenant', 'x-kcp-lane', 'X-Kcp-Tenant ', 'Subject', 'X-Other', 'x-kcp-');
    const value = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, ''));
    fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), (extra) => {
      const block = ['From: ann@example.com', ...extra.map(([n, v]) => `${n}: ${v}`)].join('\r\n') + '\r\n\r\n';
      const r = checkAndRewriteHeaders(block, route, defaults);
      if (!r.ok) return; // a name with a space is not a header field and is refused whole
      const out = r.headers.split('\r\n');
      expect(out.filter((l) => /^x-kcp-/i.test(l))).toEqual([`${TENANT_HEADER}: ${route.tenantId}`, `${LANE_HEADER}: external`]);
    }));
  });
});

describe('line structure of the data', () => {
  const scan = (chunks: string[]): LineProblem | null => {
    const s = newLineScan();
    for (const c of chunks) {
      const p = scanLines(s, Buffer.from(c, 'latin1'));
      if (p) return p;
    }
    return endLines(s);
  };

  it.each<[string, string[], LineProblem | null]>([
    ['CRLF lines', ['A: 1\r\n\r\nbody\r\n'], null],
    ['empty data', [], null],
    ['a CRLF split across chunks', ['A: 1\r', '\nB: 2\r\n'], null],
    ['a bare LF', ['A: 1\nB: 2\r\n'], 'bare_lf'],
    ['a bare LF at the start of a chunk after a complete line', ['A: 1\r\n', '\n'], 'bare_lf'],
    ['LF CR (reversed)', ['A: 1\n\r'], 'bare_lf'],
    ['a bare CR', ['A: 1\rB: 2\r\n'], 'bare_cr'],
    ['a CR ending one chunk and no LF starting the next', ['A: 1\r', 'B\r\n'], 'bare_cr'],
    ['a CR at the very end', ['A: 1\r'], 'bare_cr'],
    ['CR CR LF', ['A: 1\r\r\n'], 'bare_cr'],
    ['998 octets', [`${'x'.repeat(998)}\r\n`], null],
    ['999 octets', [`${'x'.repeat(999)}\r\n`], 'line_too_long'],
    ['999 octets over three chunks', ['x'.repeat(500), 'x'.repeat(400), `${'x'.repeat(99)}\r\n`], 'line_too_long'],
    ['998 octets, CRLF in the next chunk', ['x'.repeat(998), '\r\n'], null],
  ])('%s: %s', (_n, chunks, expected) => {
    expect(scan(chunks)).toBe(expected);
  });

  it('property: agrees with a byte-by-byte reading however the data is chunked', () => {
    const byte = fc.constantFrom('a', ' ', '.', '\r', '\n', '\r\n', '\r\n');
    fc.assert(fc.property(fc.array(byte, { maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 5 }), (parts, cuts) => {
      const text = parts.join('');
      // the reference: the first bare CR or bare LF, reading one byte at a time
      let expected: LineProblem | null = null;
      for (let i = 0; i < text.length && !expected; i++) {
        if (text[i] === '\r' && text[i + 1] !== '\n') expected = 'bare_cr';
        else if (text[i] === '\n' && text[i - 1] !== '\r') expected = 'bare_lf';
      }
      const at = [...new Set(cuts.map((c) => Math.min(c, text.length)))].sort((a, b) => a - b);
      const chunks = [0, ...at].map((start, i, all) => text.slice(start, all[i + 1] ?? text.length));
      expect(scan(chunks)).toBe(expected);
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
