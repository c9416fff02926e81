/**
 * Reports that come back as mail, turned into KumoMTA-shaped log records so they travel the same
 * ingest path as everything else:
 *   - DSN (RFC 3464): a message/delivery-status part; each failed recipient becomes an `OOB` record;
 *   - ARF (RFC 5965): a message/feedback-report part; it becomes a `Feedback` record.
 * Attribution uses what survives the round trip: KumoMTA's X-KumoRef trace header in the returned
 * original (base64 JSON carrying the tenant meta), else the original's From or return-path domain.
 * Pure: the MIME walking happens in an adapter, which hands over the parts' text.
 */
import { createHash } from 'node:crypto';

export type Fields = Map<string, string[]>;

/** RFC 822-style field blocks (unfolded), separated by blank lines. Field names are lower-cased. */
export function parseFieldBlocks(text: string): Fields[] {
  const blocks: Fields[] = [];
  let current: Fields | null = null;
  let last: { name: string; index: number } | null = null;
  for (const rawLine of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (rawLine.trim() === '') {
      if (current && current.size > 0) blocks.push(current);
      current = null;
      last = null;
      continue;
    }
    if (/^[ \t]/.test(rawLine) && last && current) {
      const values = current.get(last.name)!;
      values[last.index] = `${values[last.index]} ${rawLine.trim()}`;
      continue;
    }
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(rawLine);
    if (!m) continue;
    current ??= new Map();
    const name = m[1]!.toLowerCase();
    const values = current.get(name) ?? [];
    values.push(m[2]!.trim());
    current.set(name, values);
    last = { name, index: values.length - 1 };
  }
  if (current && current.size > 0) blocks.push(current);
  return blocks;
}

const first = (f: Fields | undefined, name: string): string | null => f?.get(name)?.[0] ?? null;

/** `rfc822; user@example.com` -> `user@example.com` */
export function addressField(value: string | null): string | null {
  if (!value) return null;
  const v = value.includes(';') ? value.slice(value.indexOf(';') + 1) : value;
  const addr = v.trim().replace(/^<|>$/g, '').toLowerCase();
  return /^[^@\s<>]+@[^@\s<>]+$/.test(addr) && addr.length <= 320 ? addr : null;
}

/** The address inside a From/Return-Path value such as `"Acme" <news@acme.example>`. */
export function addressIn(value: string | null): string | null {
  if (!value) return null;
  const m = /<([^<>\s]+@[^<>\s]+)>/.exec(value) ?? /([^\s<>"]+@[^\s<>"]+)/.exec(value);
  return m ? addressField(m[1]!) : null;
}

export interface KumoRef {
  recipient?: string;
  tenant?: string;
  [key: string]: unknown;
}

/** Decode an X-KumoRef value; null unless it is KumoMTA's marker-bearing JSON object. */
export function decodeKumoRef(value: string | null): KumoRef | null {
  if (!value || value.length > 4096) return null;
  try {
    const json: unknown = JSON.parse(Buffer.from(value.replace(/\s+/g, ''), 'base64').toString('utf8'));
    if (json && typeof json === 'object' && !Array.isArray(json) && '_@_' in json) return json as KumoRef;
  } catch {
    // not ours
  }
  return null;
}

export interface ReturnedOriginal {
  /** header fields of the original message (from message/rfc822 or text/rfc822-headers) */
  headers: Fields;
}

function originalFacts(original: ReturnedOriginal | null) {
  const h = original?.headers;
  const ref = decodeKumoRef(first(h, 'x-kumoref'));
  return {
    ref,
    messageId: first(h, 'message-id'),
    from: addressIn(first(h, 'return-path')) ?? addressIn(first(h, 'from')),
  };
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

/** A stable record id for a returned report: its own Message-ID, else a hash of its content. */
export function reportId(reportMessageId: string | null, body: string): string {
  return sha(reportMessageId ? `mid:${reportMessageId}` : `body:${body}`);
}

/**
 * Records for a DSN. Only `Action: failed` recipients become records; delayed, delivered, relayed and
 * expanded notices are information, not outcomes.
 */
export function dsnToRecords(deliveryStatus: string, original: ReturnedOriginal | null, id: string, fallbackTime: Date): Record<string, unknown>[] {
  const [perMessage, ...perRecipient] = parseFieldBlocks(deliveryStatus);
  const o = originalFacts(original);
  const arrival = first(perMessage, 'arrival-date');
  const records: Record<string, unknown>[] = [];
  for (const r of perRecipient) {
    if ((first(r, 'action') ?? '').toLowerCase() !== 'failed') continue;
    const recipient = addressField(first(r, 'original-recipient')) ?? addressField(first(r, 'final-recipient'));
    const status = /^([245])\.(\d{1,3})\.(\d{1,3})/.exec(first(r, 'status') ?? '');
    const diag = first(r, 'diagnostic-code');
    const smtp = diag && /^smtp;\s*(\d{3})\s+(.*)$/i.exec(diag);
    const when = first(r, 'last-attempt-date') ?? arrival;
    const at = when && !Number.isNaN(Date.parse(when)) ? new Date(when) : fallbackTime;
    records.push({
      type: 'OOB',
      id,
      sender: o.from,
      recipient: o.ref?.recipient && typeof o.ref.recipient === 'string' ? o.ref.recipient : recipient,
      response: {
        code: smtp ? Number(smtp[1]) : 550,
        enhanced_code: status ? { class: Number(status[1]), subject: Number(status[2]), detail: Number(status[3]) } : null,
        content: (smtp ? smtp[2]! : (diag ?? '')).slice(0, 2000),
        command: null,
      },
      event_time: at.toISOString(),
      bounce_classification: 'Uncategorized',
      meta: o.ref?.tenant ? { tenant: o.ref.tenant } : {},
      headers: o.messageId ? { 'Message-ID': o.messageId } : {},
    });
  }
  return records;
}

/** The record for an ARF report. */
export function arfToRecord(feedbackReport: string, original: ReturnedOriginal | null, id: string, fallbackTime: Date): Record<string, unknown> | null {
  const [f] = parseFieldBlocks(feedbackReport);
  if (!f) return null;
  const o = originalFacts(original);
  const arrival = first(f, 'arrival-date') ?? first(f, 'received-date');
  const at = arrival && !Number.isNaN(Date.parse(arrival)) ? new Date(arrival) : fallbackTime;
  const originalRcpt = (f.get('original-rcpt-to') ?? []).map(addressField).filter((a): a is string => a !== null);
  return {
    type: 'Feedback',
    id,
    sender: null,
    recipient: null,
    response: { code: 250, enhanced_code: null, content: '', command: null },
    event_time: at.toISOString(),
    feedback_report: {
      feedback_type: (first(f, 'feedback-type') ?? 'abuse').toLowerCase().slice(0, 100),
      original_mail_from: addressField(first(f, 'original-mail-from')) ?? o.from,
      original_rcpto_to: originalRcpt,
      supplemental_trace: o.ref,
    },
    meta: {},
    headers: o.messageId ? { 'Message-ID': o.messageId } : {},
  };
}
