/**
 * One message's way through a kumod node, driven by the client's own commands: the envelope sender
 * and each recipient are passed on as the client gives them, so kumod's answer to a recipient is the
 * client's answer; the body is streamed once; and the client hears 250 only when kumod said 250 to the
 * end of the data. A node lost before the data is replaced by the next candidate (the envelope is
 * replayed); a node lost during the data turns into a 4xx, so the client sends again and nothing is
 * counted twice or lost.
 */
import type { SmtpReply } from './relay-connection.js';
import { RelayConnection, RelayConnectionError } from './relay-connection.js';
import type { RelayPool, RelayTarget } from './relay-pool.js';
import { REPLIES } from '../../domain/submission/replies.js';

export const NO_RELAY: SmtpReply = REPLIES.noRelay;
export const RELAY_LOST: SmtpReply = REPLIES.relayLost;

/** The reply stands for a node that could not be reached or was lost, not for kumod's verdict. */
export const isRelayFailure = (r: SmtpReply): boolean => r.code === 451 && (r.enhanced === NO_RELAY.enhanced || r.enhanced === RELAY_LOST.enhanced);

export class RelayTransaction {
  private node: RelayTarget | null = null;
  private conn: RelayConnection | null = null;
  private readonly accepted: string[] = [];
  /** set when the transaction can no longer succeed; DATA answers with it */
  private broken: SmtpReply | null = null;
  private finished = false;

  constructor(
    private readonly pool: RelayPool,
    private readonly candidates: readonly RelayTarget[],
    private readonly mailFrom: string,
    private readonly mailParams: string,
  ) {}

  get nodeName(): string | null {
    return this.node?.name ?? null;
  }

  get recipients(): readonly string[] {
    return this.accepted;
  }

  private mailCommand(): string {
    return `MAIL FROM:<${this.mailFrom}>${this.mailParams ? ` ${this.mailParams}` : ''}`;
  }

  /**
   * Open the envelope on a node (trying candidates in health order) with the recipients accepted so
   * far plus `next`, all pipelined. Returns the reply for `next`, or null when no node would take it.
   */
  private async open(next: string): Promise<SmtpReply> {
    for (const node of this.pool.order(this.candidates)) {
      let conn: RelayConnection;
      try {
        conn = await this.pool.lease(node);
      } catch {
        continue;
      }
      try {
        const replies = await conn.pipeline([this.mailCommand(), ...[...this.accepted, next].map((r) => `RCPT TO:<${r}>`)]);
        const [mail, ...rcpts] = replies;
        if (mail!.code !== 250) {
          await conn.command('RSET');
          this.pool.release(node, conn, true);
          // a refusal of the sender is kumod's word on the message, not a node failure
          return mail!;
        }
        const replayed = rcpts.slice(0, -1);
        if (replayed.some((r) => r.code !== 250)) {
          // recipients the client was already told "250" are refused here: the client must retry
          await conn.command('RSET');
          this.pool.release(node, conn, true);
          this.broken = RELAY_LOST;
          return RELAY_LOST;
        }
        this.node = node;
        this.conn = conn;
        return rcpts[rcpts.length - 1]!;
      } catch (e) {
        if (e instanceof RelayConnectionError) {
          this.pool.markDown(node, e.message);
          conn.destroy();
          continue;
        }
        throw e;
      }
    }
    return NO_RELAY;
  }

  /** Pass a recipient to kumod; its reply is the client's reply. */
  async addRecipient(rcpt: string): Promise<SmtpReply> {
    if (this.broken) return this.broken;
    let reply: SmtpReply;
    if (!this.conn) {
      reply = await this.open(rcpt);
    } else {
      try {
        reply = await this.conn.command(`RCPT TO:<${rcpt}>`);
      } catch (e) {
        if (!(e instanceof RelayConnectionError)) throw e;
        this.pool.markDown(this.node!, e.message);
        this.conn.destroy();
        this.conn = null;
        this.node = null;
        reply = await this.open(rcpt);
      }
    }
    if (reply.code === 421) {
      // the node is closing: this recipient is deferred, and the rest start afresh elsewhere
      this.conn?.destroy();
      if (this.node) this.pool.markDown(this.node, `421 ${reply.text}`);
      this.conn = null;
      this.node = null;
      if (this.accepted.length > 0) this.broken = RELAY_LOST;
      return { code: 451, enhanced: '4.4.2', text: reply.text };
    }
    if (reply.code === 250 || reply.code === 251) this.accepted.push(rcpt);
    return reply;
  }

  /**
   * Send DATA, then the rewritten header block and the rest of the body as the client sends it.
   * `body` yields the bytes after the header block. `abort` (the client's message went over the size
   * limit, or its stream failed) drops the connection before the final dot, which kumod discards.
   */
  async sendData(headers: Buffer, body: AsyncIterable<Buffer>, shouldAbort: () => SmtpReply | null): Promise<SmtpReply> {
    if (this.broken) return this.broken;
    if (!this.conn || !this.node) return NO_RELAY;
    const conn = this.conn;
    const node = this.node;
    try {
      const go = await conn.command('DATA');
      if (go.code !== 354) {
        this.finish(true);
        return go.code === 421 ? { code: 451, enhanced: '4.4.2', text: go.text } : go;
      }
      conn.resetBodyState();
      await conn.writeBody(headers);
      for await (const chunk of body) {
        const abort = shouldAbort();
        if (abort) {
          this.finish(false);
          return abort;
        }
        await conn.writeBody(chunk);
      }
      const abort = shouldAbort();
      if (abort) {
        this.finish(false);
        return abort;
      }
      const reply = await conn.endBody();
      this.finish(true);
      return reply.code === 421 ? { code: 451, enhanced: '4.4.2', text: reply.text } : reply;
    } catch (e) {
      if (!(e instanceof RelayConnectionError)) {
        this.finish(false);
        throw e;
      }
      this.pool.markDown(node, e.message);
      this.finish(false);
      return RELAY_LOST;
    }
  }

  /** Close the transaction; a connection in mid-envelope is reset (or dropped) before it is reused. */
  finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    const { conn, node } = this;
    this.conn = null;
    if (!conn || !node) return;
    if (!reusable || !conn.usable) {
      this.pool.release(node, conn, false);
      return;
    }
    this.pool.release(node, conn, true);
  }

  /** The client gave up on the envelope (RSET, QUIT, a new MAIL, a refused message). */
  async abandon(): Promise<void> {
    if (this.finished) return;
    const { conn, node } = this;
    if (conn && node && conn.usable) {
      try {
        const r = await conn.command('RSET');
        this.finished = true;
        this.conn = null;
        this.pool.release(node, conn, r.code === 250);
        return;
      } catch {
        // fall through: dropped below
      }
    }
    this.finish(false);
  }
}
