/**
 * DATA: the message is checked on its way through and relayed once, and the client hears 250 only
 * after kumod said 250 to the end of the data.
 *
 * 1. Every chunk's lines are checked as it arrives (CRLF only, no line over 998 octets); a problem
 *    anywhere refuses the message (550 5.6.0) before its final dot reaches kumod, which then discards
 *    what it got, so nothing is relayed.
 * 2. The header block is collected (at most MAX_HEADER_BYTES), the tenant's facts read afresh, and the
 *    block checked and rewritten (From and the other author headers, trusted headers, Message-ID, Date).
 * 3. The rewritten block and the rest of the body are streamed to the relay transaction; a message
 *    over the size limit is cut off before its final dot (552 5.3.4).
 * smtp-server answers only once the data has ended, so a refused message is still read to its end.
 */
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { isRelayFailure } from '../../adapters/smtp/relay-transaction.js';
import { recordWarmingEngagement } from '../../app/warming/engagement.js';
import { endLines, lineProblemReply, newLineScan, scanLines, type LineProblem } from '../../domain/submission/data-lines.js';
import { checkAndRewriteHeaders, headerEnd, headerValues, MAX_HEADER_BYTES } from '../../domain/submission/message-headers.js';
import { REPLIES, type GatewayReply } from '../../domain/submission/replies.js';
import { referencedWarmingIds } from '../../domain/warming/messages.js';
import type { GatewayDeps } from '../deps.js';
import { asRefusal, refusal, relayRefusal } from '../refusal.js';
import { currentFacts } from '../session.js';

/** The text after the 250 code: kumod's own, with its enhanced code. */
export async function handleData(deps: GatewayDeps, stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
  const { log, cfg } = deps;
  const s = deps.sessions.of(session);
  const tx = s.tx;
  const lane = s.lane;
  s.tx = null;
  s.lane = null;
  const recipients = session.envelope.rcptTo.length;
  let bytes = 0;
  const done = (outcome: 'accepted' | 'refused' | 'deferred') => deps.observer.transaction(outcome, (performance.now() - s.startedAt) / 1000, recipients, outcome === 'accepted' ? bytes : 0);

  try {
    if (!tx || !s.facts || !lane) throw refusal(REPLIES.noRelayTransaction);
    const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const lines = newLineScan();
    let lineProblem: LineProblem | null = null;
    /** the next chunk, counted and its lines checked before anyone uses it */
    const next = async (): Promise<IteratorResult<Buffer>> => {
      const n = await iterator.next();
      if (n.done) lineProblem ??= endLines(lines);
      else {
        bytes += n.value.length;
        lineProblem ??= scanLines(lines, n.value);
      }
      return n;
    };
    const drain = async (): Promise<void> => {
      for (let n = await iterator.next(); !n.done; n = await iterator.next()) bytes += n.value.length;
    };
    const refuseBeforeRelaying = async (r: GatewayReply): Promise<never> => {
      await tx.abandon();
      await drain();
      throw refusal(r);
    };

    // the header block (bounded), then everything after it is streamed
    let head: Buffer = Buffer.alloc(0);
    let end = -1;
    for (;;) {
      const n = await next();
      if (n.done) break;
      head = head.length === 0 ? n.value : Buffer.concat([head, n.value]);
      if (lineProblem) return await refuseBeforeRelaying(lineProblemReply(lineProblem));
      end = headerEnd(head);
      if (end >= 0) break;
      if (head.length > MAX_HEADER_BYTES) return await refuseBeforeRelaying(REPLIES.headerBlockTooLarge(MAX_HEADER_BYTES));
    }
    if (lineProblem) return await refuseBeforeRelaying(lineProblemReply(lineProblem));
    // the message is answered on what is true now, not on what was true at its last RCPT
    const f = await currentFacts(deps.facts, s).catch(async (e: unknown) => {
      await tx.abandon();
      await drain();
      throw e;
    });
    s.facts = f;
    // a message of headers only (no blank line) is all header block
    const block = end >= 0 ? head.subarray(0, end) : head;
    const rest = end >= 0 ? head.subarray(end) : Buffer.alloc(0);
    const headerText = block.toString('latin1');
    const checked = checkAndRewriteHeaders(headerText, { tenantId: f.tenantId, lane, verifiedDomains: f.verifiedDomains }, { messageIdToken: deps.newMessageIdToken(), now: deps.ctx.now() });
    if (!checked.ok) return await refuseBeforeRelaying(checked);
    if (checked.stripped.length > 0) log.info({ session: session.id, tenant: f.tenantId, headers: checked.stripped }, 'removed trusted headers the client sent');
    const replyTo = referencedWarmingIds(headerValues(headerText, ['In-Reply-To', 'References']));

    async function* body(): AsyncGenerator<Buffer> {
      if (rest.length > 0) yield rest;
      for (let n = await next(); !n.done; n = await next()) yield n.value;
    }
    // asked before each chunk is written and before the final dot
    const shouldAbort = (): GatewayReply | null =>
      stream.sizeExceeded || bytes > cfg.maxMessageBytes ? REPLIES.messageTooLarge(cfg.maxMessageBytes) : lineProblem ? lineProblemReply(lineProblem) : null;
    const reply = await tx.sendData(Buffer.from(checked.headers, 'latin1'), body(), shouldAbort);
    await drain();
    if (reply.code !== 250) {
      if (isRelayFailure(reply)) deps.observer.relayError('data');
      throw relayRefusal(reply);
    }
    done('accepted');
    if (s.warmingRecipients > 0) void deps.warming.charge(f.tenantId, s.warmingRecipients);
    // a reply to warming mail coming back through the platform is engagement with it
    for (const id of replyTo) void recordWarmingEngagement(deps.ctx, { message_id: id, kind: 'reply' }).catch((e: Error) => log.warn({ err: { message: e.message } }, 'could not record a warming reply'));
    log.info({ session: session.id, tenant: f.tenantId, lane, node: tx.nodeName, recipients, bytes }, 'message relayed');
    return `${reply.enhanced ?? '2.0.0'} ${reply.text}`;
  } catch (e) {
    const r = asRefusal(e, log);
    done(r.responseCode >= 500 ? 'refused' : 'deferred');
    if (r.responseCode !== 552) log.info({ session: session.id, tenant: s.facts?.tenantId ?? s.tenantId, code: r.responseCode, reply: r.message }, 'message not relayed');
    throw r;
  }
}
