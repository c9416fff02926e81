/**
 * A line-by-line SMTP client for the tests that need the exact reply to each command, malformed ones
 * included (real clients refuse to send those). Talks to the real gateway over TCP or TLS.
 */
import { connect as tcp, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class SmtpDialogue {
  private buffer = '';
  private waiting: ((reply: string) => void) | null = null;
  private lines: string[] = [];
  private replies: string[] = [];

  private constructor(private socket: Socket | TLSSocket) {
    this.listen();
  }

  private listen(): void {
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.buffer += d;
      let i: number;
      while ((i = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 2);
        this.lines.push(line);
        if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
          const reply = this.lines.join('\n');
          this.lines = [];
          if (this.waiting) {
            const w = this.waiting;
            this.waiting = null;
            w(reply);
          } else this.replies.push(reply);
        }
      }
    });
  }

  /** `localAddress`: the source address to connect from (any of 127.0.0.0/8 works on loopback). */
  static async open(port: number, opts: { tls?: boolean; localAddress?: string } = {}): Promise<{ d: SmtpDialogue; greeting: string }> {
    const local = opts.localAddress ? { localAddress: opts.localAddress } : {};
    const socket = opts.tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...local })
      : tcp({ host: '127.0.0.1', port, ...local });
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const d = new SmtpDialogue(socket);
    return { d, greeting: await d.reply() };
  }

  reply(timeoutMs = 10_000): Promise<string> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no SMTP reply in time')), timeoutMs);
      this.waiting = (r) => {
        clearTimeout(t);
        resolve(r);
      };
    });
  }

  async send(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** Write raw bytes (message data) without waiting for a reply. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async starttls(): Promise<void> {
    const r = await this.send('STARTTLS');
    if (!r.startsWith('220')) throw new Error(`STARTTLS refused: ${r}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    this.socket = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve) => this.socket.once('secureConnect', () => resolve()));
    this.listen();
  }

  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
