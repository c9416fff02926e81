/**
 * The header block of a submitted message, checked and rewritten before a byte of it goes to kumod:
 *
 * - exactly one From, on domains the tenant verified; every other header that names who sent the
 *   message (Sender, Resent-From, Resent-Sender) is held to the same domains, so a receiver shows no
 *   author the tenant does not own;
 * - every header in the gateway's trusted namespace (X-KCP-*) and KumoMTA's trace header
 *   (X-KumoRef, which attributes returned mail to a tenant) removed wherever it appears, so a tenant
 *   can never name another tenant, pick its lane, or have another tenant's bounces counted;
 * - the gateway's own trusted headers put first; Message-ID and Date added when the submission lacks
 *   them (RFC 6409 8.2 and 8.3: the submission server may, and receivers expect both).
 *
 * The block's line endings were checked before (data-lines.ts: CRLF only, no bare CR or LF), so a
 * line here is what every receiver sees as one. Pure: text in, text out.
 */
import { addressDomain, mailboxAddresses } from './addresses.js';
import type { Lane } from './gate.js';
import { REPLIES, type GatewayReply } from './replies.js';
import { lineProblemReply, newLineScan, scanLines } from './data-lines.js';

export const TENANT_HEADER = 'X-KCP-Tenant';
export const LANE_HEADER = 'X-KCP-Lane';
const TRUSTED_NAMESPACE = /^x-kcp-/i;
/** headers only the nodes may write: removed from what a tenant submits */
const NODE_ONLY = new Set(['x-kumoref']);

/** Largest header block accepted; a longer one is refused rather than buffered without bound. */
export const MAX_HEADER_BYTES = 256 * 1024;

/** Index just past the blank line that ends the header block in `buf`, or -1 if it is not there yet. */
export function headerEnd(buf: Buffer): number {
  for (let i = buf.indexOf(10); i >= 0 && i < buf.length; i = buf.indexOf(10, i + 1)) {
    // the line after this LF is empty: LF LF or LF CR LF
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

export type HeaderCheck = { ok: true; headers: string; from: string[]; stripped: string[]; added: string[] } | ({ ok: false } & GatewayReply);

/** What the gateway adds when the tenant left it out; the caller brings the randomness and the clock. */
export interface HeaderDefaults {
  /** unique, [A-Za-z0-9._-] only: the left-hand side of a new Message-ID */
  messageIdToken: string;
  now: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/**
 * An RFC 5322 date-time in UTC with a numeric zone (never the obsolete "GMT").
 *
 * @example rfc5322Date(new Date('2026-12-01T10:00:00Z')) // 'Tue, 01 Dec 2026 10:00:00 +0000'
 */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

interface Field {
  name: string;
  lower: string;
  lines: string[];
}

const valueOf = (f: Field): string => f.lines.join('').slice(f.name.length + 1);

export function checkAndRewriteHeaders(
  block: string,
  route: { tenantId: string; lane: Lane; verifiedDomains: ReadonlySet<string> },
  defaults: HeaderDefaults,
): HeaderCheck {
  const refuse = (r: GatewayReply): HeaderCheck => ({ ok: false, ...r });
  // the gateway checked the lines already; checked again here so that this function is safe alone
  const lineProblem = scanLines(newLineScan(), Buffer.from(block, 'latin1'));
  if (lineProblem) return refuse(lineProblemReply(lineProblem));
  const lines = block.replace(/(\r\n)+$/, '').split('\r\n');
  const fields: Field[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      const last = fields[fields.length - 1];
      if (!last) return refuse(REPLIES.foldedFirst);
      last.lines.push(line);
      continue;
    }
    const m = /^([!-9;-~]+):/.exec(line);
    if (!m) return refuse(REPLIES.notAHeaderField);
    fields.push({ name: m[1]!, lower: m[1]!.toLowerCase(), lines: [line] });
  }
  const named = (lower: string): Field[] => fields.filter((f) => f.lower === lower);

  /** every address on a verified domain of the tenant, or the refusal naming the first that is not */
  const unverified = (name: string, addresses: string[]): HeaderCheck | null => {
    for (const address of addresses) {
      const domain = addressDomain(address)!;
      if (!route.verifiedDomains.has(domain)) return refuse(REPLIES.headerDomainUnverified(name, domain));
    }
    return null;
  };

  const froms = named('from');
  if (froms.length === 0) return refuse(REPLIES.fieldMissing('From'));
  if (froms.length > 1) return refuse(REPLIES.fieldRepeated('From'));
  const from = mailboxAddresses(valueOf(froms[0]!));
  if (!from) return refuse(REPLIES.addressesNotPlain('From'));
  const fromProblem = unverified('From', from);
  if (fromProblem) return fromProblem;

  // Sender names one mailbox and at most once (RFC 5322 3.6.2); each Resent block names its own
  if (named('sender').length > 1) return refuse(REPLIES.fieldRepeated('Sender'));
  for (const f of fields) {
    if (f.lower !== 'sender' && f.lower !== 'resent-sender' && f.lower !== 'resent-from') continue;
    const addresses = mailboxAddresses(valueOf(f));
    const single = f.lower !== 'resent-from';
    if (!addresses || (single && addresses.length !== 1)) return refuse(single ? REPLIES.mailboxNotPlain(f.name) : REPLIES.addressesNotPlain(f.name));
    const problem = unverified(f.name, addresses);
    if (problem) return problem;
  }

  const stripped: string[] = [];
  const kept: string[] = [`${TENANT_HEADER}: ${route.tenantId}`, `${LANE_HEADER}: ${route.lane}`];
  for (const f of fields) {
    if (TRUSTED_NAMESPACE.test(f.name) || NODE_ONLY.has(f.lower)) stripped.push(f.name);
    else kept.push(...f.lines);
  }
  const added: string[] = [];
  if (named('message-id').length === 0) added.push(`Message-ID: <${defaults.messageIdToken}@${addressDomain(from[0]!)!}>`);
  if (named('date').length === 0) added.push(`Date: ${rfc5322Date(defaults.now)}`);
  kept.push(...added);
  return { ok: true, headers: `${kept.join('\r\n')}\r\n\r\n`, from, stripped, added };
}

/** The unfolded values of the named header fields (case-insensitive) in a header block. */
export function headerValues(block: string, names: readonly string[]): string[] {
  const want = new Set(names.map((n) => n.toLowerCase()));
  const out: string[] = [];
  let current: string | null = null;
  for (const line of block.split(/\r?\n/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && current !== null) {
      out[out.length - 1] += ` ${line.trim()}`;
      continue;
    }
    current = null;
    const m = /^([!-9;-~]+):(.*)$/.exec(line);
    if (m && want.has(m[1]!.toLowerCase())) {
      current = m[1]!;
      out.push(m[2]!.trim());
    }
  }
  return out;
}
