import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressField, addressIn, arfToRecord, decodeKumoRef, dsnToRecords, parseFieldBlocks } from './delivery-report.js';

const ref = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64');

describe('field blocks', () => {
  it('splits on blank lines, unfolds continuation lines, keeps repeated fields', () => {
    const blocks = parseFieldBlocks('Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nDiagnostic-Code: smtp; 550 first\r\n  second line\r\nX-Repeat: 1\r\nX-Repeat: 2\r\n');
    expect(blocks).toHaveLength(2);
    expect(blocks[1]!.get('diagnostic-code')).toEqual(['smtp; 550 first second line']);
    expect(blocks[1]!.get('x-repeat')).toEqual(['1', '2']);
  });

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), (s) => {
      expect(() => parseFieldBlocks(s)).not.toThrow();
    }));
  });
});

describe('addresses and X-KumoRef', () => {
  it.each([
    ['rfc822; User@Example.com', 'user@example.com'],
    ['rfc822;<a@b.example>', 'a@b.example'],
    ['a@b.example', 'a@b.example'],
    ['rfc822; not an address', null],
  ])('addressField(%j) = %j', (input, out) => expect(addressField(input)).toBe(out));

  it('addressIn reads display-name forms', () => {
    expect(addressIn('"Acme, Inc" <News@Acme.example>')).toBe('news@acme.example');
  });

  it('decodes only KumoMTA\'s marker-bearing payload', () => {
    expect(decodeKumoRef(ref({ '_@_': '\\_/', recipient: 'a@b.example', tenant: 't' }))).toMatchObject({ recipient: 'a@b.example', tenant: 't' });
    expect(decodeKumoRef(ref({ recipient: 'a@b.example' }))).toBeNull();
    expect(decodeKumoRef(ref([1, 2]))).toBeNull();
    expect(decodeKumoRef('%%%not base64')).toBeNull();
    expect(decodeKumoRef('A'.repeat(5000))).toBeNull();
  });
});

describe('reports to records', () => {
  const status = [
    'Reporting-MTA: dns; mx.example',
    'Arrival-Date: Sat, 21 Nov 2026 10:15:07 +0000',
    '',
    'Final-Recipient: rfc822; gone@x.example',
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 no such user',
    '',
    'Final-Recipient: rfc822; later@x.example',
    'Action: delayed',
    'Status: 4.4.1',
    '',
  ].join('\n');

  it('DSN: one OOB record per failed recipient, with code, status and the original\'s tenant', () => {
    const original = { headers: new Map([['x-kumoref', [ref({ '_@_': '\\_/', tenant: 'T' })]], ['message-id', ['<m@acme.example>']], ['from', ['Acme <news@acme.example>']]]) };
    const records = dsnToRecords(status, original, 'rid', new Date(0));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      type: 'OOB',
      recipient: 'gone@x.example',
      sender: 'news@acme.example',
      response: { code: 550, enhanced_code: { class: 5, subject: 1, detail: 1 }, content: '5.1.1 no such user' },
      event_time: '2026-11-21T10:15:07.000Z',
      meta: { tenant: 'T' },
      headers: { 'Message-ID': '<m@acme.example>' },
    });
  });

  it('ARF: a Feedback record with the feedback type and original envelope', () => {
    const r = arfToRecord('Feedback-Type: abuse\nUser-Agent: x\nVersion: 1\nOriginal-Mail-From: <b@bounces.acme.example>\nOriginal-Rcpt-To: <u@yahoo.com>\nArrival-Date: Sun, 22 Nov 2026 02:10:51 +0000\n', null, 'rid', new Date(0));
    expect(r).toMatchObject({ type: 'Feedback', feedback_report: { feedback_type: 'abuse', original_mail_from: 'b@bounces.acme.example', original_rcpto_to: ['u@yahoo.com'] } });
  });
});
