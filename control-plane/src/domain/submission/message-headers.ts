/**
 * The header block of a submitted message, checked and rewritten before a byte of it goes to kumod:
 * exactly one From, on domains the tenant verified; every header in the gateway's trusted namespace
 * (X-KCP-*) removed wherever it appears, so a tenant can never name another tenant or pick its lane;
 * then the gateway's own trusted headers put first. Pure: bytes in, bytes out.
 */
import { addressDomain, mailboxAddresses } from './addresses.js';
import type { Lane } from './gate.js';

export const TENANT_HEADER = 'X-KCP-Tenant';
export const LANE_HEADER = 'X-KCP-Lane';
const TRUSTED_NAMESPACE = /^x-kcp-/i;

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

export type HeaderCheck =
  | { ok: true; headers: string; from: string[]; stripped: string[] }
  | { ok: false; code: 550 | 553; enhanced: string; message: string };

export function checkAndRewriteHeaders(block: string, route: { tenantId: string; lane: Lane; verifiedDomains: ReadonlySet<string> }): HeaderCheck {
  const lines = block.replace(/(\r?\n)+$/, '').split(/\r?\n/);
  const fields: { name: string; lines: string[] }[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      const last = fields[fields.length - 1];
      if (!last) return { ok: false, code: 550, enhanced: '5.6.0', message: 'the message starts with a folded header line' };
      last.lines.push(line);
      continue;
    }
    const m = /^([!-9;-~]+):/.exec(line);
    if (!m) return { ok: false, code: 550, enhanced: '5.6.0', message: 'the header block has a line that is not a header field' };
    fields.push({ name: m[1]!, lines: [line] });
  }

  const froms = fields.filter((f) => f.name.toLowerCase() === 'from');
  if (froms.length !== 1) {
    return { ok: false, code: 550, enhanced: '5.6.0', message: froms.length === 0 ? 'the message has no From header' : 'the message has more than one From header' };
  }
  const fromValue = froms[0]!.lines.join('').slice(froms[0]!.name.length + 1);
  const from = mailboxAddresses(fromValue);
  if (!from) return { ok: false, code: 550, enhanced: '5.6.0', message: 'the From header is not a list of plain addresses' };
  for (const address of from) {
    const domain = addressDomain(address)!;
    if (!route.verifiedDomains.has(domain)) {
      return { ok: false, code: 553, enhanced: '5.7.1', message: `header From domain ${domain} is not a verified sending domain of this tenant` };
    }
  }

  const stripped: string[] = [];
  const kept: string[] = [`${TENANT_HEADER}: ${route.tenantId}`, `${LANE_HEADER}: ${route.lane}`];
  for (const f of fields) {
    if (TRUSTED_NAMESPACE.test(f.name)) stripped.push(f.name);
    else kept.push(...f.lines);
  }
  return { ok: true, headers: `${kept.join('\r\n')}\r\n\r\n`, from, stripped };
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
