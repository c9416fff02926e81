import { connect } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { smtpServerTuned, tuneSmtpServer } from './smtp-server-tuning.js';

describe('smtp-server tuning', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('relies on internals that this smtp-server version still has', () => {
    const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
    for (const name of ['init', '_setListeners', 'connectionReady', 'send', '_onCommand', '_getEnhancedStatusCode']) expect(typeof proto[name]).toBe('function');
    // the fields the command cap reads
    expect(SMTPConnection.toString()).toMatch(/_nextHandler/);
  });

  it('greets without the 100 ms early-talker timer, and keeps our enhanced codes', async () => {
    tuneSmtpServer();
    expect(smtpServerTuned()).toBe(true);
    const server = new SMTPServer({
      disableReverseLookup: true,
      authOptional: true,
      logger: false,
      onMailFrom(_a, _s, cb) {
        cb(Object.assign(new Error('5.7.1 not from here'), { responseCode: 553 }));
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // with setTimeout frozen, smtp-server's own init would never greet: ours does not wait for a timer
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const port = (server.server.address() as { port: number }).port;
    const socket = connect({ host: '127.0.0.1', port });
    const lines: string[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => lines.push(...d.split('\r\n').filter(Boolean)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 20_000 && !lines.some((l) => re.test(l)); i++) await new Promise((r) => setImmediate(r));
      return lines.find((l) => re.test(l));
    };
    expect(await waitFor(/^220 /)).toBeDefined();
    socket.write('EHLO x\r\nMAIL FROM:<a@b.example>\r\n');
    expect(await waitFor(/^553 /)).toBe('553 5.7.1 not from here');
    vi.useRealTimers();
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
