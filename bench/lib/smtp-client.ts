/**
 * The benchmark's own SMTP client: a persistent session that can STARTTLS and AUTH PLAIN (which
 * smtp-source cannot), sends one transaction at a time and times each from MAIL FROM to the reply
 * to the end of the data.
 */
import { connect as tcp, type Socket } from 'node:net';
import { connect as tls, type TLSSocket } from 'node:tls';

export class BenchSmtpClient {
  private buffer = '';
  private waiting: ((line: string) => void)[] = [];
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
        if (/^\d{3}(?: |$)/.test(line)) {
          const w = this.waiting.shift();
          if (w) w(line);
          else this.replies.push(line);
        }
      }
    });
  }

  private reply(): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async expect(line: string | null, code: string): Promise<string> {
    if (line !== null) this.socket.write(`${line}\r\n`);
    const r = await this.reply();
    if (!r.startsWith(code)) throw new Error(`${line ?? 'greeting'}: expected ${code}, got ${r}`);
    return r;
  }

  static async open(port: number, auth?: { user: string; pass: string }): Promise<BenchSmtpClient> {
    const socket = tcp({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new BenchSmtpClient(socket);
    await c.expect(null, '220');
    await c.expect('EHLO bench.example', '250');
    if (auth) {
      await c.expect('STARTTLS', '220');
      c.socket.removeAllListeners('data');
      c.socket = tls({ socket, rejectUnauthorized: false });
      await new Promise<void>((resolve) => c.socket.once('secureConnect', () => resolve()));
      c.listen();
      await c.expect('EHLO bench.example', '250');
      await c.expect(`AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.pass}`).toString('base64')}`, '235');
    }
    return c;
  }

  /** One transaction, pipelined as PIPELINING allows; the seconds it took, or throws on a refusal. */
  async send(from: string, to: string[], data: string): Promise<number> {
    const t0 = performance.now();
    this.socket.write(`MAIL FROM:<${from}>\r\n${to.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
    const replies = await Promise.all([this.reply(), ...to.map(() => this.reply()), this.reply()]);
    if (!replies[0]!.startsWith('250') || !replies[replies.length - 1]!.startsWith('354')) throw new Error(`refused: ${replies.join(' | ')}`);
    this.socket.write(`${data}\r\n.\r\n`);
    const end = await this.reply();
    if (!end.startsWith('250')) throw new Error(`refused: ${end}`);
    return (performance.now() - t0) / 1000;
  }

  async quit(): Promise<void> {
    this.socket.write('QUIT\r\n');
    await this.reply().catch(() => undefined);
    this.socket.destroy();
  }
}

/** A 2 KB message like smtp-source's, with a From the bench tenant owns. */
export function benchMessage(from: string, to: string, bytes = 2048): string {
  const head = `From: <${from}>\r\nTo: <${to}>\r\nSubject: bench\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@bench.example>\r\n\r\n`;
  const line = 'La de da de da 1.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= bytes) body += line;
  return head + body.replace(/\r\n$/, '');
}
