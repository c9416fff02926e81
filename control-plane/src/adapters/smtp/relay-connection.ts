/**
 * One SMTP client connection from the gateway to a kumod node. Written for the relay's needs rather
 * than taken from a general client: commands are sent as the client's own commands arrive (so each
 * recipient's answer from kumod becomes the client's answer), several may be pipelined, and the message
 * body is streamed through with dot-stuffing, never collected.
 */
import { connect, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  /** e.g. "2.0.0", or null when the server gave none */
  enhanced: string | null;
  /** the reply text without code and enhanced code, lines joined with a space */
  text: string;
}

/** The connection failed or was closed: nothing after the last complete reply can be trusted. */
export class RelayConnectionError extends Error {
  constructor(message: string, readonly stage: 'connect' | 'greeting' | 'command' | 'data') {
    super(message);
    this.name = 'RelayConnectionError';
  }
}

interface Pending {
  resolve: (r: SmtpReply) => void;
  reject: (e: Error) => void;
}

export interface RelayConnectionOptions {
  host: string;
  port: number;
  ehloName: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

export class RelayConnection {
  private socket!: Socket;
  private buffer = '';
  private lines: string[] = [];
  private readonly pending: Pending[] = [];
  private broken: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** the last byte written to the body was a line feed (or nothing was written yet) */
  private atLineStart = true;
  private lastTwo = '';
  /** body writes are corked so a small message leaves in one segment with its final dot */
  private corked = 0;
  private isCorked = false;
  readonly extensions = new Set<string>();
  maxSize = 0;
  transactions = 0;

  private constructor(readonly options: RelayConnectionOptions) {}

  static async open(options: RelayConnectionOptions): Promise<RelayConnection> {
    const c = new RelayConnection(options);
    await c.start();
    return c;
  }

  get usable(): boolean {
    return this.broken === null && !this.socket.destroyed;
  }

  private async start(): Promise<void> {
    const { host, port, connectTimeoutMs } = this.options;
    this.socket = connect({ host, port, noDelay: true });
    this.socket.setEncoding('latin1');
    this.socket.on('data', (chunk: string) => this.onData(chunk));
    this.socket.on('error', (e) => this.fail(new RelayConnectionError(`relay ${host}:${port}: ${e.message}`, 'command')));
    this.socket.on('close', () => this.fail(new RelayConnectionError(`relay ${host}:${port} closed the connection`, 'command')));
    const greeting = await this.expectReply(connectTimeoutMs).catch((e: Error) => {
      throw new RelayConnectionError(e.message, 'connect');
    });
    if (greeting.code !== 220) {
      this.destroy();
      throw new RelayConnectionError(`relay ${host}:${port} greeted with ${greeting.code} ${greeting.text}`, 'greeting');
    }
    const ehlo = await this.command(`EHLO ${this.options.ehloName}`);
    if (ehlo.code !== 250) {
      this.destroy();
      throw new RelayConnectionError(`relay ${host}:${port} answered EHLO with ${ehlo.code} ${ehlo.text}`, 'greeting');
    }
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.lines.push(line);
      // "250-..." continues, "250 ..." (or a bare code) ends a reply
      if (/^\d{3}(?: |$)/.test(line)) this.completeReply();
      else if (!/^\d{3}-/.test(line)) this.fail(new RelayConnectionError(`relay sent a line that is not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`, 'command'));
    }
  }

  private completeReply(): void {
    const lines = this.lines;
    this.lines = [];
    const code = Number(lines[0]!.slice(0, 3));
    const texts = lines.map((l) => l.slice(4));
    if (this.extensions.size === 0 && code === 250 && lines.length > 1) {
      // EHLO reply: the first line is the greeting, the rest are extensions
      for (const ext of texts.slice(1)) {
        const [kw, arg] = ext.split(' ');
        this.extensions.add(kw!.toUpperCase());
        if (kw!.toUpperCase() === 'SIZE' && arg) this.maxSize = Number(arg) || 0;
      }
    }
    const first = texts[0] ?? '';
    const m = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(first);
    const enhanced = m ? m[1]! : null;
    const text = [m ? first.slice(m[0].length) : first, ...texts.slice(1).map((t) => (m && t.startsWith(m[1]!) ? t.slice(m[1]!.length + 1) : t))].join(' ').trim();
    const p = this.pending.shift();
    if (!p) return this.fail(new RelayConnectionError(`relay sent an unexpected reply ${code} ${text}`, 'command'));
    this.disarm();
    if (this.pending.length > 0) this.arm(this.options.commandTimeoutMs);
    p.resolve({ code, enhanced, text });
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    this.disarm();
    for (const p of this.pending.splice(0)) p.reject(e);
    this.socket.destroy();
  }

  private arm(ms: number): void {
    this.disarm();
    this.timer = setTimeout(() => this.fail(new RelayConnectionError(`relay ${this.options.host}:${this.options.port} did not answer within ${ms} ms`, 'command')), ms);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private expectReply(timeoutMs: number): Promise<SmtpReply> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<SmtpReply>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      if (this.pending.length === 1) this.arm(timeoutMs);
    });
  }

  /** Send one command line (no CR or LF in it) and wait for its reply. */
  command(line: string): Promise<SmtpReply> {
    return this.pipeline([line]).then((r) => r[0]!);
  }

  /** Send several command lines in one write (PIPELINING) and collect their replies in order. */
  pipeline(lines: string[]): Promise<SmtpReply[]> {
    if (this.broken) return Promise.reject(this.broken);
    for (const l of lines) if (/[\r\n]/.test(l)) return Promise.reject(new Error('an SMTP command may not contain a line break'));
    const replies = lines.map(() => this.expectReply(this.options.commandTimeoutMs));
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
    return Promise.all(replies);
  }

  /**
   * Write part of the message body. Lines starting with "." get another (RFC 5321 4.5.2), also when
   * a line starts in one chunk and the dot arrives in the next. Resolves when the socket can take more.
   */
  writeBody(chunk: Buffer): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    let out = chunk;
    let needsStuffing = this.atLineStart && chunk[0] === 0x2e;
    if (!needsStuffing) needsStuffing = chunk.includes('\n.');
    if (needsStuffing) {
      const parts: Buffer[] = [];
      let start = 0;
      if (this.atLineStart && chunk[0] === 0x2e) parts.push(Buffer.from('.'));
      for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
        if (chunk[i + 1] === 0x2e) {
          parts.push(chunk.subarray(start, i + 1), Buffer.from('.'));
          start = i + 1;
        }
      }
      parts.push(chunk.subarray(start));
      out = Buffer.concat(parts);
    }
    if (chunk.length > 0) {
      this.atLineStart = chunk[chunk.length - 1] === 0x0a;
      this.lastTwo = (this.lastTwo + chunk.subarray(-2).toString('latin1')).slice(-2);
    }
    if (!this.isCorked) {
      this.socket.cork();
      this.isCorked = true;
    }
    this.corked += out.length;
    const ok = this.socket.write(out);
    if (this.corked < 64 * 1024 && ok) return Promise.resolve();
    // a large message streams: flush what is held, and wait if the socket is full
    this.socket.uncork();
    this.isCorked = false;
    this.corked = 0;
    if (ok || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off('drain', onDrain);
        reject(this.broken ?? new RelayConnectionError('relay closed during the message data', 'data'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /** End the body (adding the line break it lacks) and wait for kumod's verdict on the message. */
  endBody(): Promise<SmtpReply> {
    const tail = this.lastTwo === '\r\n' ? '.\r\n' : this.atLineStart ? '.\r\n' : '\r\n.\r\n';
    this.atLineStart = true;
    this.lastTwo = '';
    if (this.broken) return Promise.reject(this.broken);
    const reply = this.expectReply(this.options.commandTimeoutMs);
    this.socket.write(tail, 'latin1');
    if (this.isCorked) {
      this.isCorked = false;
      this.corked = 0;
      this.socket.uncork();
    }
    this.transactions++;
    return reply;
  }

  /** Before DATA's 354: the next body starts a fresh line. */
  resetBodyState(): void {
    this.atLineStart = true;
    this.lastTwo = '';
  }

  async quit(): Promise<void> {
    if (!this.usable) return;
    await this.command('QUIT').catch(() => undefined);
    this.socket.destroy();
  }

  /** Drop the connection without a word: kumod discards a message whose data never ended. */
  destroy(): void {
    this.fail(new RelayConnectionError('relay connection dropped by the gateway', 'command'));
  }

  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }
}
