/**
 * Every reply the submission gateway itself gives (code, enhanced status code, text), in one table:
 * the gate, AUTH, the header and data checks and the session stages all answer from here, so a
 * reply's wording and codes are decided once. Replies that pass kumod's own answer through (a refused
 * recipient, kumod's 250) and smtp-server's protocol replies (500, 503, 354, ...) are not in it.
 *
 * Codes follow RFC 5321 and RFC 3463: 4xx for what may work later (a dependency away, a limit that
 * refills), 5xx for what will not; x.7.x for policy, x.6.x for content, x.5.x for protocol.
 */
export interface GatewayReply {
  code: number;
  /** RFC 3463, e.g. "5.7.1" */
  enhanced: string;
  /** one line, no CR or LF */
  text: string;
}

const reply = (code: number, enhanced: string, text: string): GatewayReply => ({ code, enhanced, text: text.replace(/[\r\n]+/g, ' ') });

/** The most octets a line may have before its CRLF (RFC 5322 2.1.1). */
export const MAX_LINE_OCTETS = 998;

export const REPLIES = {
  // ---- connection and session ----
  serviceUnavailable: reply(421, '4.3.0', 'service temporarily unavailable: try again later'),
  tooManyClients: reply(421, '4.7.0', 'too many connected clients: try again in a moment'),
  tooManyCommandsBeforeAuth: reply(421, '4.7.0', 'too many commands before authentication'),
  tenantSessionsAtConnect: reply(421, '4.7.0', 'too many concurrent sessions for this tenant: try again shortly'),
  tenantSessionsAtAuth: reply(454, '4.7.0', 'too many concurrent sessions for this tenant: try again shortly'),
  localError: reply(451, '4.3.0', 'local error in processing: try again later'),

  // ---- AUTH: one reply for an unknown user and a wrong password ----
  authInvalid: reply(535, '5.7.8', 'authentication credentials invalid'),
  authLockedOut: reply(454, '4.7.0', 'too many failed authentication attempts: try again later'),
  authUnavailable: reply(454, '4.7.0', 'temporary authentication failure: try again later'),
  authRequired: reply(530, '5.7.0', 'authentication required'),
  credentialRevoked: reply(530, '5.7.0', 'the credential this session authenticated with has been revoked'),

  // ---- MAIL ----
  tenantSuspended: reply(550, '5.7.1', 'this tenant is suspended from sending'),
  agentNotFromPeer: reply(553, '5.7.1', 'the warming agent sends only from warming-network peers'),
  nullSender: reply(553, '5.7.1', 'a null sender cannot be submitted here'),
  senderNotPlain: reply(553, '5.1.7', 'the sender address is not a plain address'),
  senderDomainUnverified: (domain: string) => reply(553, '5.7.1', `sender domain ${domain} is not a verified sending domain of this tenant`),
  smtputf8Unsupported: reply(555, '5.6.7', 'SMTPUTF8 is not supported for submission'),

  // ---- RCPT ----
  mailFirst: reply(503, '5.5.1', 'MAIL first'),
  tooManyRecipients: (max: number) => reply(452, '4.5.3', `too many recipients: at most ${max} per message, send the rest in another`),
  recipientNotPlain: reply(501, '5.1.3', 'the recipient address is not a plain address'),
  agentNotToMember: reply(550, '5.7.1', 'the warming agent sends only to warming-network members'),
  laneMix: (lane: string, existing: string) => reply(452, '4.5.3', `this recipient goes on the ${lane} lane and the message already has ${existing} recipients: send it in a separate message`),

  // ---- the gate (domain/submission/gate.ts) ----
  suppressed: (recipient: string, scope: string, pattern: string, reason: string) => reply(550, '5.1.1', `${recipient} is on the ${scope} suppression list (${pattern}: ${reason})`),
  warmingScheduleUsed: reply(452, '4.7.1', "today's warming schedule is used up: try again tomorrow"),
  warmingScheduleUnreadable: reply(451, '4.3.0', 'the warming schedule cannot be checked right now: try again later'),
  trustLocked: (score: string, lockBelow: number, unlockAt: number, rehabilitation: string | null) =>
    reply(550, '5.7.1', `external sending is locked: Platform Trust Score ${score} (locks below ${lockBelow}, unlocks at ${unlockAt}).${rehabilitation ? ` ${rehabilitation}` : ''}`),
  placementHold: (hold: string) => reply(550, '5.7.1', `external sending is paused: ${hold}`),
  budgetUnreadable: reply(451, '4.3.0', 'the sending budget cannot be checked right now: try again later'),
  budgetUsed: (refillSeconds: number) => reply(452, '4.7.1', `the external sending budget is used up: it refills in ${refillSeconds} seconds`),

  // ---- DATA: the bytes (domain/submission/data-lines.ts) ----
  noRelayTransaction: reply(451, '4.4.1', 'no relay transaction is open: try again'),
  messageTooLarge: (max: number) => reply(552, '5.3.4', `the message is larger than the limit of ${max} bytes`),
  headerBlockTooLarge: (max: number) => reply(552, '5.3.4', `the header block is larger than ${max} bytes`),
  // refused as Postfix does since the SMTP smuggling advisories (CVE-2023-51764): a line ends in CRLF
  // and nowhere else, so no receiver can read a different message (or a second one) out of it
  bareCr: reply(550, '5.6.0', 'the message has a bare CR: every line must end in CRLF, and CR may appear nowhere else'),
  bareLf: reply(550, '5.6.0', 'the message has a bare LF: every line must end in CRLF, and LF may appear nowhere else'),
  lineTooLong: reply(550, '5.6.0', `the message has a line longer than ${MAX_LINE_OCTETS} octets (RFC 5322 2.1.1)`),

  // ---- DATA: the header block (domain/submission/message-headers.ts) ----
  foldedFirst: reply(550, '5.6.0', 'the message starts with a folded header line'),
  notAHeaderField: reply(550, '5.6.0', 'the header block has a line that is not a header field'),
  fieldMissing: (name: string) => reply(550, '5.6.0', `the message has no ${name} header`),
  fieldRepeated: (name: string) => reply(550, '5.6.0', `the message has more than one ${name} header`),
  addressesNotPlain: (name: string) => reply(550, '5.6.0', `the ${name} header is not a list of plain addresses`),
  mailboxNotPlain: (name: string) => reply(550, '5.6.0', `the ${name} header is not one plain address`),
  headerDomainUnverified: (name: string, domain: string) => reply(553, '5.7.1', `header ${name} domain ${domain} is not a verified sending domain of this tenant`),

  // ---- relaying (adapters/smtp/relay-transaction.ts) ----
  noRelay: reply(451, '4.4.1', 'no relay node is reachable right now: try again later'),
  relayLost: reply(451, '4.4.2', 'the relay connection was lost before the message was accepted: send it again'),
} as const;

/** The reply line as the client reads it, e.g. `550 5.7.1 external sending is locked: ...`. */
export function formatReply(r: GatewayReply): string {
  return `${r.code} ${r.enhanced} ${r.text}`;
}
