import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, parseKumoRecord, type RecordType } from './kumo-log-record.js';

const TENANT = '6a1f0c55-9b7e-4d0c-8f43-2a1e5d9c7b10';
const record = (over: Record<string, unknown> = {}) => ({
  type: 'Delivery',
  id: '1d98076abbbc11ed940250ebf67f93bd',
  sender: 'news@acme.example',
  recipient: 'User@Gmail.com',
  queue: `${TENANT}@gmail.com`,
  site: 'ip-1->(alt1|alt2)?.gmail-smtp-in.l.google.com@smtp_client',
  size: 1047,
  response: { code: 250, enhanced_code: { class: 2, subject: 0, detail: 0 }, content: 'OK', command: '.' },
  timestamp: 1763769600,
  event_time: '2025-11-22T00:00:00.123456789Z',
  num_attempts: 1,
  bounce_classification: 'Uncategorized',
  egress_pool: 'premium-1',
  egress_source: 'ip-1',
  meta: { tenant: TENANT, kcp_lane: 'external' },
  headers: { 'Message-ID': '<abc@acme.example>' },
  nodeid: '0f8e5d4c-0000-4000-8000-000000000001',
  ...over,
});

describe('classify', () => {
  it.each<[RecordType, number | null, string | null, string | null, string | null, string, boolean, boolean]>([
    ['Delivery', 250, '2.0.0', 'OK', 'Uncategorized', 'delivered', false, true],
    ['Reception', 250, null, 'OK', null, 'received', false, false],
    ['Bounce', 550, '5.1.1', 'user unknown', 'InvalidRecipient', 'hard_bounce', true, true],
    ['Bounce', 550, '5.1.1', 'no such user', 'Uncategorized', 'hard_bounce', true, true],
    ['Bounce', 550, '5.7.1', 'spam detected', 'SpamBlock', 'hard_bounce', false, true],
    ['Bounce', 552, '5.2.2', 'mailbox full', 'Uncategorized', 'soft_bounce', false, true],
    ['Bounce', 552, '5.2.2', 'over quota', 'QuotaIssues', 'soft_bounce', false, true],
    ['Bounce', 550, '5.0.0', 'I am on vacation', 'AutoReply', 'other', false, false],
    ['OOB', 550, '5.1.1', 'user unknown', 'Uncategorized', 'hard_bounce', true, true],
    ['OOB', 550, '5.4.4', 'no route', 'BadDomain', 'hard_bounce', true, true],
    ['TransientFailure', 421, '4.7.0', 'try later', 'Uncategorized', 'soft_bounce', false, true],
    ['Expiration', 551, '5.4.7', 'expired', 'MessageExpired', 'expired', false, true],
    ['AdminBounce', 550, null, 'admin', null, 'other', false, false],
    ['Rejection', 550, '5.7.1', 'relaying not permitted', null, 'rejected', false, false],
    ['Delayed', null, null, null, null, 'other', false, false],
    ['Bounce', 500, null, 'KumoMTA internal: QueueManager::insert failed during reception: x', null, 'other', false, false],
    ['TransientFailure', 451, '4.4.4', 'failed to resolve queue x', null, 'other', false, false],
  ])('%s %s %s (%s, %s) -> %s', (type, code, enh, text, cls, outcome, suppress, scored) => {
    expect(classify(type, code, enh, text, cls, null)).toMatchObject({ outcome, suppress, scored });
  });

  it.each<[RecordType, number, string, string, boolean]>([
    ['Rejection', 550, '5.7.1', 'relaying not permitted', false],
    ['Rejection', 550, '5.7.1', 'external sending is locked for this sender: warming lane only', false],
    ['Rejection', 451, '4.3.0', 'this node has no verified policy yet: try again later', true],
    ['Rejection', 451, '4.7.0', 'this node has no DKIM key for the sender domain yet: try again later', true],
    ['Bounce', 500, '5.0.0', 'KumoMTA internal: QueueManager::insert failed during reception: x', true],
    ['Delivery', 250, '2.0.0', 'OK', false],
  ])("%s %s %s (%s): the node's fault = %s (what a canary is judged on)", (type, code, enh, text, fault) => {
    expect(classify(type, code, enh, text, null, null).nodeFault === true).toBe(fault);
  });

  it('feedback: abuse is a complaint; not-spam is not', () => {
    expect(classify('Feedback', null, null, null, null, 'abuse')).toMatchObject({ outcome: 'complaint', suppress: true, scored: true });
    expect(classify('Feedback', null, null, null, null, 'not-spam')).toMatchObject({ outcome: 'other', scored: false });
  });
});

describe('parseKumoRecord', () => {
  it('takes tenant and lane from meta, time from event_time, the Message-ID from headers', () => {
    const r = parseKumoRecord(record(), 'node-1');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({
      tenantId: TENANT,
      lane: 'external',
      recipient: 'user@gmail.com',
      recipientDomain: 'gmail.com',
      messageId: '<abc@acme.example>',
      enhancedCode: '2.0.0',
      occurredAt: new Date('2025-11-22T00:00:00.123Z'),
      classification: { outcome: 'delivered' },
    });
    expect(r.events[0]!.sourceId).toMatch(/^kumo:[0-9a-f]{64}$/);
  });

  it('falls back to the unix timestamp for nodes older than 2025.10.06', () => {
    const { event_time: _drop, ...old } = record();
    const r = parseKumoRecord(old, 'n');
    expect(r.ok && r.events[0]!.occurredAt.toISOString()).toBe('2025-11-22T00:00:00.000Z');
  });

  it('expands a multi-recipient record into one event per recipient with distinct ids', () => {
    const r = parseKumoRecord(record({ recipient: ['a@x.example', 'b@x.example', 'c@y.example'] }), 'n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.events.map((e) => e.recipient)).toEqual(['a@x.example', 'b@x.example', 'c@y.example']);
    expect(new Set(r.events.map((e) => e.sourceId)).size).toBe(3);
  });

  it('warming lane; a tenant that is not one of our ids is ignored, not trusted', () => {
    const r = parseKumoRecord(record({ meta: { tenant: "x'; DROP TABLE tenants; --", kcp_lane: 'warming' } }), 'n');
    expect(r.ok && r.events[0]).toMatchObject({ tenantId: null, lane: 'warming' });
  });

  it('feedback: the complained-about recipient and tenant come from the X-KumoRef trace', () => {
    const r = parseKumoRecord(
      record({
        type: 'Feedback',
        recipient: 'fbl@ourplatform.example',
        meta: {},
        feedback_report: { feedback_type: 'abuse', original_mail_from: 'bounce@acme.example', original_rcpto_to: ['old@yahoo.com'], supplemental_trace: { '_@_': '\\_/', recipient: 'victim@yahoo.com', tenant: TENANT } },
      }),
      'n',
    );
    expect(r.ok && r.events[0]).toMatchObject({ tenantId: TENANT, recipient: 'victim@yahoo.com', classification: { outcome: 'complaint' } });
  });

  it('OOB without tenant meta is attributed through the return-path domain', () => {
    const r = parseKumoRecord(record({ type: 'OOB', meta: {}, sender: 'bounce@bounces.acme.example', response: { code: 550, enhanced_code: { class: 5, subject: 1, detail: 1 }, content: 'no such user' } }), 'n');
    expect(r.ok && r.events[0]).toMatchObject({ tenantId: null, attributionDomain: 'bounces.acme.example', classification: { outcome: 'hard_bounce', suppress: true } });
  });

  it('the same record posted twice gets the same ids; another node or attempt gets others', () => {
    const id = (rec: unknown, node = 'n') => {
      const r = parseKumoRecord(rec, node);
      return r.ok ? r.events[0]!.sourceId : null;
    };
    expect(id(record())).toBe(id(JSON.parse(JSON.stringify(record()))));
    expect(id(record(), 'other-node')).not.toBe(id(record()));
    expect(id(record({ num_attempts: 2 }))).not.toBe(id(record()));
  });

  it.each([
    ['not an object', 'hello', 'JSON object'],
    ['an array', [1], 'JSON object'],
    ['an unknown type', { ...record(), type: 'Teleport' }, 'record type'],
    ['a missing id', { ...record(), id: undefined }, 'spool id'],
    ['a hostile id', { ...record(), id: "1'; --" }, 'spool id'],
    ['no time', { ...record(), event_time: 'yesterday', timestamp: undefined }, 'valid time'],
    ['a time past what a Date holds', { ...record(), event_time: '', timestamp: 8640000000000.001 }, 'valid time'],
    ['a time in 1970', { ...record(), event_time: undefined, timestamp: 5 }, 'valid time'],
    ['a numeric recipient', { ...record(), recipient: 42 }, 'recipient'],
    ['a recipient with spaces', { ...record(), recipient: 'a b@c' }, 'not an address'],
    ['a recipient with a NUL byte (PostgreSQL cannot store it)', { ...record(), recipient: 'a\u0000@c.example' }, 'not an address'],
    ['a recipient list with a control character in one', { ...record(), recipient: ['a@c.example', 'b\u0007@c.example'] }, 'not an address'],
    ['a code out of range', { ...record(), response: { code: 9999 } }, 'response.code'],
  ])('rejects %s with a reason', (_n, raw, reason) => {
    const r = parseKumoRecord(raw, 'n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('property: never throws, whatever the input', () => {
    fc.assert(fc.property(fc.anything(), (x) => {
      expect(() => parseKumoRecord(x, 'n')).not.toThrow();
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.dictionary(fc.constantFrom('type', 'id', 'recipient', 'response', 'meta', 'timestamp', 'event_time', 'feedback_report', 'headers'), fc.anything()), (x) => {
      expect(() => parseKumoRecord({ ...record(), ...x }, 'n')).not.toThrow();
    }), { numRuns: 2000 });
  });

  it('strips control characters from response text', () => {
    const r = parseKumoRecord(record({ response: { code: 550, content: 'bad\r\nX-Forged: 1\u0000' } }), 'n');
    expect(r.ok && r.events[0]!.responseText).toBe('bad X-Forged: 1 ');
  });
});
