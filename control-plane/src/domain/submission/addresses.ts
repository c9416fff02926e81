/**
 * Addresses a tenant hands the gateway, in the envelope and in the From header. Whatever a tenant
 * writes here reaches kumod's SMTP dialogue and logs, so only plain addresses pass.
 */

const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
// dot-atom local parts (RFC 5321 without quoted strings): what outreach senders use, and nothing that
// could close the angle brackets or smuggle a parameter into the relayed command
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** The lower-cased domain of a plain address, or null when it is not one. */
export function addressDomain(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at > 64) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  return LOCAL.test(local) && HOST.test(domain) ? domain : null;
}

/**
 * The addresses of an RFC 5322 mailbox list (a From header's value, unfolded): display names, quoted
 * strings, comments and groups removed. Null when something in it is not a plain address, so the
 * caller refuses rather than guesses which part a receiver would show.
 */
export function mailboxAddresses(value: string): string[] | null {
  let text = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      if (ch === '\\') i++;
      else if (ch === '(') depth++;
      else if (ch === ')') depth--;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '(') depth = 1;
    else text += ch;
  }
  if (quoted || depth > 0) return null;
  // a group ("name: a@b, c@d;") lists its members after the colon
  const colon = text.indexOf(':');
  if (colon >= 0 && !text.slice(0, colon).includes('<') && !text.slice(0, colon).includes('@')) {
    text = text.slice(colon + 1).replace(/;\s*$/, '');
  }
  const out: string[] = [];
  for (const part of text.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const angle = /<([^<>]*)>\s*$/.exec(trimmed);
    const address = (angle ? angle[1]! : trimmed).trim();
    if (angle && trimmed.slice(0, angle.index).includes('@')) return null; // "a@evil <b@ours>"
    if (addressDomain(address) === null) return null;
    out.push(address);
  }
  return out.length > 0 ? out : null;
}
