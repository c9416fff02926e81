/**
 * How a stage says no: a Refusal is the Error smtp-server turns into the reply line (its
 * `responseCode`, then the message, which starts with the enhanced code). Our own refusals come from
 * the reply table; kumod's are passed on with the enhanced code it gave. Anything else thrown in a
 * stage is a failure of ours, and the client hears "try later", never a 250 and never a stack trace.
 */
import type { Logger } from '../adapters/logger.js';
import type { SmtpReply } from '../adapters/smtp/relay-connection.js';
import { FactsUnavailableError } from '../app/submission/submission-facts.js';
import { REPLIES, type GatewayReply } from '../domain/submission/replies.js';

export class Refusal extends Error {
  constructor(
    readonly responseCode: number,
    enhanced: string,
    text: string,
  ) {
    super(`${enhanced} ${text.replace(/[\r\n]+/g, ' ')}`);
    this.name = 'Refusal';
  }
}

/** A refusal with one of the gateway's own replies. */
export const refusal = (r: GatewayReply): Refusal => new Refusal(r.code, r.enhanced, r.text);

/** kumod's answer passed on: its enhanced code, or the class's generic one when it gave none. */
export const relayRefusal = (r: SmtpReply): Refusal => new Refusal(r.code, r.enhanced ?? (r.code >= 500 ? '5.0.0' : '4.0.0'), r.text);

/** Whatever a stage threw, as the reply the client gets. */
export function asRefusal(e: unknown, log: Logger): Refusal {
  if (e instanceof Refusal) return e;
  // PostgreSQL away is an outage to report, not a bug to trace
  if (e instanceof FactsUnavailableError) log.warn({ err: { message: e.message } }, 'submission facts unavailable');
  else log.error({ err: { message: (e as Error)?.message, stack: (e as Error)?.stack } }, 'gateway error');
  return refusal(REPLIES.localError);
}
