/** Builders for KumoMTA log records shaped exactly as kumod's log hooks post them (docs/reference/log_record.md). */
import { randomBytes } from 'node:crypto';

export type RecordKind = 'Delivery' | 'Bounce' | 'TransientFailure' | 'Expiration' | 'Feedback' | 'Reception' | 'OOB' | 'AdminBounce';

export interface RecordOpts {
  tenant?: string | null;
  lane?: 'external' | 'warming';
  recipient?: string | string[];
  at?: Date;
  id?: string;
  attempts?: number;
  code?: number;
  enhanced?: [number, number, number] | null;
  content?: string;
  classification?: string;
  feedbackType?: string;
  sender?: string;
}

const DEFAULTS: Record<RecordKind, { code: number; enhanced: [number, number, number] | null; content: string; classification: string }> = {
  Delivery: { code: 250, enhanced: [2, 0, 0], content: 'OK ids=8a5475ccbbc611eda12250ebf67f93bd', classification: 'Uncategorized' },
  Bounce: { code: 550, enhanced: [5, 1, 1], content: "The email account that you tried to reach does not exist.", classification: 'InvalidRecipient' },
  TransientFailure: { code: 421, enhanced: [4, 7, 0], content: 'Try again later', classification: 'Uncategorized' },
  Expiration: { code: 551, enhanced: [5, 4, 7], content: 'Next delivery time would be after expiration', classification: 'Uncategorized' },
  Feedback: { code: 250, enhanced: null, content: '', classification: 'Uncategorized' },
  Reception: { code: 250, enhanced: null, content: '', classification: 'Uncategorized' },
  OOB: { code: 550, enhanced: [5, 1, 1], content: 'user unknown', classification: 'Uncategorized' },
  AdminBounce: { code: 551, enhanced: null, content: 'Administratively bounced', classification: 'Uncategorized' },
};

export function kumoRecord(type: RecordKind, o: RecordOpts = {}): Record<string, unknown> {
  const d = DEFAULTS[type];
  const at = o.at ?? new Date();
  const enhanced = o.enhanced === undefined ? d.enhanced : o.enhanced;
  const recipient = o.recipient ?? `r-${randomBytes(4).toString('hex')}@gmail.com`;
  const rec: Record<string, unknown> = {
    type,
    id: o.id ?? randomBytes(16).toString('hex'),
    sender: o.sender ?? 'bounce@bounces.acme-mail.example',
    recipient,
    queue: `${o.tenant ?? 'unknown'}@gmail.com`,
    site: type === 'Reception' ? '' : 'ip-1->(alt1|alt2|alt3|alt4)?.gmail-smtp-in.l.google.com@smtp_client',
    size: 2048,
    response: {
      code: o.code ?? d.code,
      enhanced_code: enhanced ? { class: enhanced[0], subject: enhanced[1], detail: enhanced[2] } : null,
      content: o.content ?? d.content,
      command: type === 'Reception' ? null : '.',
    },
    peer_address: { name: 'gmail-smtp-in.l.google.com.', addr: '142.251.2.27' },
    timestamp: Math.floor(at.getTime() / 1000),
    event_time: at.toISOString(),
    created: Math.floor(at.getTime() / 1000) - 5,
    created_time: new Date(at.getTime() - 5000).toISOString(),
    num_attempts: o.attempts ?? 1,
    bounce_classification: o.classification ?? d.classification,
    egress_pool: 'standard-1',
    egress_source: 'ip-1',
    source_address: { address: '203.0.113.20:53210' },
    feedback_report: null,
    meta: o.tenant === null ? {} : { tenant: o.tenant, kcp_lane: o.lane ?? 'external' },
    headers: { 'Message-ID': `<${randomBytes(6).toString('hex')}@acme-mail.example>` },
    delivery_protocol: 'ESMTP',
    reception_protocol: 'ESMTP',
    nodeid: '0f8e5d4c-0000-4000-8000-000000000001',
  };
  if (type === 'Feedback') {
    rec.recipient = 'fbl@ourplatform.example';
    rec.meta = {};
    rec.feedback_report = {
      feedback_type: o.feedbackType ?? 'abuse',
      user_agent: 'Yahoo!-Mail-Feedback/2.0',
      version: '0.1',
      original_mail_from: o.sender ?? 'bounce@bounces.acme-mail.example',
      original_rcpto_to: [],
      extensions: {},
      original_message: null,
      supplemental_trace: { '_@_': '\\_/', recipient: Array.isArray(recipient) ? recipient[0] : recipient, ...(o.tenant ? { tenant: o.tenant } : {}) },
    };
  }
  return rec;
}
