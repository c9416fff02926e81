import { describe, expect, it } from 'vitest';
import { cleanNodeText, nodePolicyVerdict, parseNodeReport, type NodePolicyFacts } from './node-policy-state.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const now = new Date('2026-12-01T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);

const facts = (over: Partial<NodePolicyFacts>): NodePolicyFacts => ({
  current: { version: 3, contentSha256: A, publishedAt: ago(10_000) },
  applied: { sha256: A, at: ago(9_000), copy: 'generated' },
  lastPullAt: ago(2_000),
  installError: null,
  now,
  staleMs: 60_000,
  ...over,
});

describe('node policy verdict', () => {
  it.each<[string, Partial<NodePolicyFacts>, string, boolean]>([
    ['runs its current version', {}, 'up_to_date', false],
    ['runs it from its last known good copy (the same bytes came back)', { applied: { sha256: A, at: ago(1), copy: 'last_known_good' } }, 'up_to_date', true],
    ['nothing published', { current: null }, 'no_policy', false],
    ['never pulled', { lastPullAt: null, applied: { sha256: null, at: null, copy: null } }, 'not_pulling', false],
    ['last pulled longer ago than the limit, even though it runs the current version', { lastPullAt: ago(60_000) }, 'not_pulling', false],
    ['published moments ago, not running yet', { current: { version: 4, contentSha256: B, publishedAt: ago(3_000) } }, 'applying', false],
    ['published longer ago than the limit and still not running', { current: { version: 4, contentSha256: B, publishedAt: ago(61_000) } }, 'stale', false],
    ['fell back and runs neither', { current: { version: 4, contentSha256: B, publishedAt: ago(61_000) }, applied: { sha256: null, at: ago(1), copy: 'none' } }, 'stale', false],
  ])('%s', (_name, over, state, fallback) => {
    const v = nodePolicyVerdict(facts(over));
    expect(v.state).toBe(state);
    expect(v.fallback).toBe(fallback);
    expect(v.reason.length).toBeGreaterThan(10);
  });

  it('gives the install error as part of the reason while the node is not up to date', () => {
    const v = nodePolicyVerdict(facts({ current: { version: 4, contentSha256: B, publishedAt: ago(61_000) }, installError: 'signature does not verify' }));
    expect(v.reason).toBe('the node does not run version 4, published 61 s ago; its last install failed: signature does not verify');
  });
});

describe('the node report', () => {
  const headers = (h: Record<string, string>) => (name: string) => h[name];
  it.each<[Record<string, string>, unknown]>([
    [{}, null],
    [{ 'x-kcp-running-sha256': A.toUpperCase(), 'x-kcp-running-copy': 'generated' }, { runningSha256: A, copy: 'generated', installError: null, queuedMessages: null }],
    [{ 'x-kcp-running-sha256': 'none', 'x-kcp-running-copy': 'none', 'x-kcp-install-error': 'x\r\ny' }, { runningSha256: null, copy: 'none', installError: 'x y', queuedMessages: null }],
    // a copy left out is implied by the hash
    [{ 'x-kcp-running-sha256': A }, { runningSha256: A, copy: 'generated', installError: null, queuedMessages: null }],
    // what kumod holds, on its own or with the rest
    [{ 'x-kcp-running-sha256': A, 'x-kcp-queued-messages': '0' }, { runningSha256: A, copy: 'generated', installError: null, queuedMessages: 0 }],
    [{ 'x-kcp-queued-messages': ' 12 ' }, { runningSha256: null, copy: 'none', installError: null, queuedMessages: 12 }],
  ])('%o', (h, want) => {
    expect(parseNodeReport(headers(h))).toEqual(want);
  });

  it.each<Record<string, string>>([
    { 'x-kcp-running-sha256': 'abc' },
    { 'x-kcp-running-sha256': A, 'x-kcp-running-copy': 'spare' },
    { 'x-kcp-running-sha256': A, 'x-kcp-running-copy': 'none' },
    { 'x-kcp-running-copy': 'generated' },
    { 'x-kcp-running-sha256': A, 'x-kcp-queued-messages': '-1' },
    { 'x-kcp-running-sha256': A, 'x-kcp-queued-messages': 'many' },
    { 'x-kcp-running-sha256': A, 'x-kcp-queued-messages': '1e3' },
  ])('refuses %o', (h) => {
    const r = parseNodeReport(headers(h));
    expect(r).toHaveProperty('problems');
  });

  it('keeps only printable text, bounded', () => {
    expect(cleanNodeText('\u0000\u0007')).toBeNull();
    expect(cleanNodeText('é'.repeat(10) + 'x'.repeat(1000))!.length).toBe(500);
    expect(cleanNodeText('a\u001b[31mred')).toBe('a [31mred');
  });
});
