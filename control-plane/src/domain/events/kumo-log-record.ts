/**
 * KumoMTA log records (the JSON its log hooks post) turned into delivery events: validated field by
 * field, expanded per recipient, and classified. Pure: the caller supplies the node that posted.
 *
 * A record is hostile input until proven otherwise: every string we keep is length-checked, the tenant
 * must look like one of our ids, and a bad record yields a reason instead of an exception, so one bad
 * record never costs its neighbours.
 */
import { createHash } from 'node:crypto';

export const RECORD_TYPES = [
  'Reception', 'Delivery', 'Bounce', 'TransientFailure', 'Expiration', 'AdminBounce', 'OOB', 'Feedback',
  'Rejection', 'AdminRebind', 'DeferredInjectionRebind', 'Delayed', 'XferOut', 'XferIn',
] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

export type Outcome = 'received' | 'delivered' | 'hard_bounce' | 'soft_bounce' | 'complaint' | 'expired' | 'rejected' | 'other';
export type Lane = 'external' | 'warming';

/** The meta keys the node policy sets (and lists in its log hook's `meta`). */
export const META_TENANT = 'tenant';
export const META_LANE = 'kcp_lane';

/** Outcomes that count toward the trust score; `classify` never scores any other. */
const SCORED: ReadonlySet<Outcome> = new Set<Outcome>(['delivered', 'hard_bounce', 'soft_bounce', 'expired', 'complaint']);
export const isScoredOutcome = (o: Outcome): boolean => SCORED.has(o);

export interface Classification {
  outcome: Outcome;
  /** the recipient address is bad or complained: add it to the tenant's suppression list */
  suppress: boolean;
  /** counts toward the trust score; false for kumod-internal and operator-caused outcomes */
  scored: boolean;
  reason: string;
  /** the node itself failed the message (refused it at reception, or kumod failed internally): what a broken policy produces */
  nodeFault?: true;
}

export interface DeliveryEvent {
  sourceId: string;
  recordType: RecordType;
  classification: Classification;
  /** tenant id from meta (or the ARF supplemental trace); null when the record names none */
  tenantId: string | null;
  /**
   * For reports that came back as mail (OOB, Feedback) and name no tenant: the domain the original
   * was sent from, which the caller maps to the tenant that owns it.
   */
  attributionDomain: string | null;
  lane: Lane;
  messageId: string | null;
  sender: string | null;
  recipient: string | null;
  recipientDomain: string | null;
  egressPool: string | null;
  egressSource: string | null;
  responseCode: number | null;
  enhancedCode: string | null;
  responseText: string | null;
  bounceClassification: string | null;
  occurredAt: Date;
  /** ARF feedback type, for Feedback records */
  feedbackType: string | null;
}

export type ParseResult = { ok: true; events: DeliveryEvent[] } | { ok: false; reason: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_RECIPIENTS = 1000;

/** Bounce classes that say the address itself is bad: suppress it. */
const ADDRESS_CLASSES = new Set(['InvalidRecipient', 'BadDomain', 'InactiveMailbox', 'DNSFailure']);
/** Classes that are about the sender or content, not the address: a scored bounce, no suppression. */
const TEMPORARY_CLASSES = new Set(['QuotaIssues', 'TransientFailure', 'NoAnswerFromHost', 'BadConnection', 'MessageExpired']);
/**
 * Receivers' words for "this address does not exist", for bounces nobody classified (returned DSNs,
 * nodes without a bounce classifier). Suppressing on these is what stops repeat hard bounces.
 */
const ADDRESS_TEXT = /user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|doesn'?t have an? [\w.-]+ account|mailbox (is )?(disabled|unavailable|not found|inactive)|address (couldn'?t be found|not found|rejected)|invalid (recipient|mailbox|address)|recipient (address )?rejected|account (is )?(disabled|inactive)/i;

/** Not the tenant's doing: an out-of-office or a challenge is not a failed delivery. */
const NOT_FAILURES = new Set(['AutoReply', 'ChallengeResponse', 'Subscribe', 'Unsubscribe']);

const str = (v: unknown, max: number): string | null =>
  typeof v === 'string' && v.length > 0 ? (v.length > max ? v.slice(0, max) : v) : null;

/** Strip control characters so a hostile peer's reply cannot forge log lines or break CSV exports. */
const clean = (v: string | null): string | null => (v === null ? null : v.replace(/[\u0000-\u001f\u007f]+/g, ' '));

export function enhancedCodeOf(response: unknown): string | null {
  const ec = (response as { enhanced_code?: unknown } | null)?.enhanced_code as { class?: unknown; subject?: unknown; detail?: unknown } | null | undefined;
  if (!ec || typeof ec !== 'object') return null;
  const { class: c, subject: s, detail: d } = ec;
  if (![c, s, d].every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 999)) return null;
  if (![2, 4, 5].includes(c as number)) return null;
  return `${c}.${s}.${d}`;
}

/** kumod's own failures (a policy error, a queue it could not resolve) are not the tenant's reputation. */
export function isKumoInternal(code: number | null, enhanced: string | null, text: string | null): boolean {
  if (text?.startsWith('KumoMTA internal:')) return true;
  return code === 451 && enhanced === '4.4.4' && /failed to resolve queue/i.test(text ?? '');
}

/**
 * Classify a record into an outcome. The enhanced status code decides where the bounce classifier
 * has no opinion: x.1.x (addressing) is a bad address; 5.2.2 (mailbox full) and 4.x.x are temporary.
 */
export function classify(
  type: RecordType,
  code: number | null,
  enhanced: string | null,
  text: string | null,
  bounceClass: string | null,
  feedbackType: string | null,
): Classification {
  if (isKumoInternal(code, enhanced, text)) return { outcome: 'other', suppress: false, scored: false, reason: 'kumod-internal failure', nodeFault: true };
  switch (type) {
    case 'Reception':
      return { outcome: 'received', suppress: false, scored: false, reason: 'accepted by kumod' };
    case 'Delivery':
      return { outcome: 'delivered', suppress: false, scored: true, reason: 'delivered' };
    case 'TransientFailure':
      return { outcome: 'soft_bounce', suppress: false, scored: true, reason: 'temporary failure' };
    case 'Expiration':
      return { outcome: 'expired', suppress: false, scored: true, reason: 'expired after retries' };
    case 'Feedback':
      if (feedbackType !== null && /^not-spam$/i.test(feedbackType)) {
        return { outcome: 'other', suppress: false, scored: false, reason: 'not-spam feedback (engagement, not a complaint)' };
      }
      return { outcome: 'complaint', suppress: true, scored: true, reason: `feedback report: ${feedbackType ?? 'abuse'}` };
    case 'Bounce':
    case 'OOB': {
      if (bounceClass && NOT_FAILURES.has(bounceClass)) return { outcome: 'other', suppress: false, scored: false, reason: `${bounceClass} is not a failure` };
      const temporary = (bounceClass !== null && TEMPORARY_CLASSES.has(bounceClass)) || enhanced === '5.2.2' || enhanced?.startsWith('4.') === true || (code !== null && code >= 400 && code < 500);
      if (temporary) return { outcome: 'soft_bounce', suppress: false, scored: true, reason: `temporary: ${bounceClass ?? enhanced ?? code}` };
      const unclassified = bounceClass === null || bounceClass === 'Uncategorized';
      const badAddress =
        (bounceClass !== null && ADDRESS_CLASSES.has(bounceClass)) ||
        (enhanced !== null && /^5\.1\./.test(enhanced)) ||
        (unclassified && text !== null && ADDRESS_TEXT.test(text));
      return { outcome: 'hard_bounce', suppress: badAddress, scored: true, reason: badAddress ? `bad address: ${bounceClass !== 'Uncategorized' && bounceClass ? bounceClass : enhanced}` : `permanent: ${bounceClass ?? enhanced ?? code}` };
    }
    case 'AdminBounce':
      return { outcome: 'other', suppress: false, scored: false, reason: 'bounced by an operator' };
    case 'Rejection':
      // a 5xx at reception is a decision (relaying denied to an internet client, a locked tenant, a bad
      // address): the internet's noise on port 25, not the node's fault; a 4xx is mail the node should
      // have taken and could not (no verified module, a key it cannot load, a handler that failed)
      return code !== null && code >= 400 && code < 500
        ? { outcome: 'rejected', suppress: false, scored: false, reason: 'refused at reception, temporarily', nodeFault: true }
        : { outcome: 'rejected', suppress: false, scored: false, reason: 'refused at reception' };
    default:
      return { outcome: 'other', suppress: false, scored: false, reason: `${type} records are not scored` };
  }
}

/** Records outside these years are corrupt or hostile: refuse them rather than skew a window. */
const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2100, 0, 1);
const plausible = (d: Date): Date | null => {
  const t = d.getTime();
  return Number.isFinite(t) && t >= EARLIEST && t < LATEST ? d : null;
};

function occurredAt(rec: Record<string, unknown>): Date | null {
  // event_time (RFC 3339, nanoseconds) exists since 2025.10.06; older nodes send only `timestamp`
  if (typeof rec.event_time === 'string') {
    const d = plausible(new Date(rec.event_time));
    if (d) return d;
  }
  if (typeof rec.timestamp === 'number' && Number.isFinite(rec.timestamp)) return plausible(new Date(rec.timestamp * 1000));
  if (typeof rec.timestamp === 'string') return plausible(new Date(rec.timestamp));
  return null;
}

function tenantFrom(rec: Record<string, unknown>): string | null {
  const candidates: unknown[] = [];
  const meta = rec.meta as Record<string, unknown> | undefined;
  if (meta && typeof meta === 'object') candidates.push(meta[META_TENANT]);
  // ARF reports that return to kumod carry the X-KumoRef payload, which includes the tenant meta
  const trace = (rec.feedback_report as { supplemental_trace?: Record<string, unknown> } | null)?.supplemental_trace;
  if (trace && typeof trace === 'object') candidates.push(trace[META_TENANT]);
  for (const c of candidates) if (typeof c === 'string' && UUID_RE.test(c.toLowerCase())) return c.toLowerCase();
  return null;
}

function laneFrom(rec: Record<string, unknown>): Lane {
  const meta = rec.meta as Record<string, unknown> | undefined;
  return meta && typeof meta === 'object' && meta[META_LANE] === 'warming' ? 'warming' : 'external';
}

function messageIdFrom(rec: Record<string, unknown>): string | null {
  const headers = rec.headers as Record<string, unknown> | undefined;
  if (headers && typeof headers === 'object') {
    for (const [k, v] of Object.entries(headers)) {
      if (k.toLowerCase() === 'message-id' && typeof v === 'string') return clean(str(v.trim(), 300));
    }
  }
  return clean(str(rec.id, 300));
}

function feedbackRecipient(rec: Record<string, unknown>): string | null {
  const report = rec.feedback_report as { supplemental_trace?: { recipient?: unknown }; original_rcpto_to?: unknown } | null | undefined;
  const traced = report?.supplemental_trace?.recipient;
  if (typeof traced === 'string' && traced.includes('@')) return traced;
  const original = report?.original_rcpto_to;
  if (Array.isArray(original) && typeof original[0] === 'string' && original[0].includes('@')) return original[0];
  return null;
}

/** OOB: the DSN went to the original return path (the record's sender). Feedback: Original-Mail-From. */
function attributionDomainOf(type: RecordType, rec: Record<string, unknown>): string | null {
  let address: unknown = null;
  if (type === 'OOB') address = rec.sender;
  else if (type === 'Feedback') address = (rec.feedback_report as { original_mail_from?: unknown } | null)?.original_mail_from;
  if (typeof address !== 'string') return null;
  const d = domainOf(address.replace(/^<|>$/g, ''));
  return d && /^[a-z0-9.-]+$/.test(d) ? d : null;
}

export function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at > 0 && at < address.length - 1 ? address.slice(at + 1).toLowerCase().slice(0, 253) : null;
}

/** Stable identity of one record for one recipient: a retried batch hashes to the same ids. */
export function sourceIdOf(nodeKey: string, rec: Record<string, unknown>, recipient: string | null, at: Date): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([nodeKey, rec.nodeid ?? null, rec.id ?? null, rec.type, at.toISOString(), rec.num_attempts ?? null, recipient, (rec.response as { code?: unknown } | null)?.code ?? null]));
  return `kumo:${h.digest('hex')}`;
}

/**
 * Parse one posted record. `nodeKey` identifies the posting node (its id), so two nodes can never
 * collide on ids even if their spool ids did.
 */
export function parseKumoRecord(raw: unknown, nodeKey: string): ParseResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'a record must be a JSON object' };
  const rec = raw as Record<string, unknown>;
  if (typeof rec.type !== 'string' || !(RECORD_TYPES as readonly string[]).includes(rec.type)) {
    return { ok: false, reason: `unknown or missing record type ${JSON.stringify(typeof rec.type === 'string' ? rec.type.slice(0, 40) : rec.type)}` };
  }
  const type = rec.type as RecordType;
  if (typeof rec.id !== 'string' || !/^[0-9A-Za-z_-]{1,128}$/.test(rec.id)) return { ok: false, reason: 'id must be the spool id (1-128 word characters)' };
  const at = occurredAt(rec);
  if (!at) return { ok: false, reason: 'neither event_time nor timestamp is a valid time' };

  let recipients: (string | null)[];
  if (type === 'Feedback') {
    // the record's own recipient is our feedback address; the complained-about one is in the report
    recipients = [feedbackRecipient(rec)];
  } else if (typeof rec.recipient === 'string') recipients = [rec.recipient];
  else if (Array.isArray(rec.recipient) && rec.recipient.length > 0 && rec.recipient.every((r) => typeof r === 'string')) recipients = rec.recipient as string[];
  else if (rec.recipient === undefined || rec.recipient === null) recipients = [null];
  else return { ok: false, reason: 'recipient must be a string or a non-empty array of strings' };
  if (recipients.length > MAX_RECIPIENTS) return { ok: false, reason: `more than ${MAX_RECIPIENTS} recipients in one record` };
  // control characters (a NUL above all, which PostgreSQL's text refuses) are never part of an address
  if (recipients.some((r) => r !== null && (r.length > 320 || /[\s<>\u0000-\u001f\u007f]/.test(r)))) return { ok: false, reason: 'a recipient is not an address' };

  const response = rec.response;
  if (response !== undefined && response !== null && typeof response !== 'object') return { ok: false, reason: 'response must be an object' };
  const codeRaw = (response as { code?: unknown } | null | undefined)?.code;
  if (codeRaw !== undefined && codeRaw !== null && !(Number.isInteger(codeRaw) && (codeRaw as number) >= 0 && (codeRaw as number) <= 999)) {
    return { ok: false, reason: 'response.code must be an integer from 0 to 999' };
  }
  const code = typeof codeRaw === 'number' ? codeRaw : null;
  const enhanced = enhancedCodeOf(response);
  const text = clean(str((response as { content?: unknown } | null | undefined)?.content, 2000));
  const bounceClass = clean(str(rec.bounce_classification, 100));
  const feedbackType = clean(str((rec.feedback_report as { feedback_type?: unknown } | null)?.feedback_type, 100));
  const classification = classify(type, code, enhanced, text, bounceClass, feedbackType);
  const tenantId = tenantFrom(rec);
  const lane = laneFrom(rec);
  const attributionDomain = tenantId === null ? attributionDomainOf(type, rec) : null;

  const events = recipients.map((r): DeliveryEvent => {
    const recipient = r === null ? null : r.toLowerCase();
    return {
      sourceId: sourceIdOf(nodeKey, rec, recipient, at),
      recordType: type,
      classification,
      tenantId,
      attributionDomain,
      lane,
      messageId: messageIdFrom(rec),
      sender: clean(str(rec.sender, 320)),
      recipient,
      recipientDomain: recipient === null ? null : domainOf(recipient),
      egressPool: clean(str(rec.egress_pool, 100)),
      egressSource: clean(str(rec.egress_source, 100)),
      responseCode: code,
      enhancedCode: enhanced,
      responseText: text,
      bounceClassification: bounceClass,
      occurredAt: at,
      feedbackType,
    };
  });
  return { ok: true, events };
}
