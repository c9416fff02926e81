/**
 * A real SMTP server (smtp-server): in the gateway tests it stands in for kumod's relay listener, in
 * the kumod suite for the receiving MTA on the internet. It keeps what it accepted, with the address
 * the sender connected from, and can be told to refuse recipients, refuse or lose messages, or close
 * connections in the middle of the data.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface SinkMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** the sender's address: the egress source kumod bound */
  remoteAddress: string;
  /** the name the sender gave in EHLO */
  clientHostname: string;
}

export interface SinkBehaviour {
  refuseRecipient?: (address: string) => { code: number; message: string } | null;
  /** close every connection once this many bytes of a message arrived */
  dropDuringDataAfter?: number | null;
  dataReply?: { code: number; message: string } | null;
}

export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  behaviour: SinkBehaviour;
  connections(): number;
  close(): Promise<void>;
}

export async function startSmtpSink(opts: { host?: string } = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const behaviour: SinkBehaviour = {};
  let opened = 0;
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disableReverseLookup: true,
    hideSTARTTLS: true,
    logger: false,
    banner: 'kumod stand-in',
    onConnect(_s, cb) {
      opened++;
      cb();
    },
    onRcptTo(address, _s, cb) {
      const r = behaviour.refuseRecipient?.(address.address);
      if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      let n = 0;
      let dropped = false;
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        const drop = behaviour.dropDuringDataAfter;
        if (drop !== null && drop !== undefined && n >= drop) {
          // a node that dies in the middle of the data never commits the message
          dropped = true;
          for (const conn of (server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections) conn._socket.destroy();
        }
      });
      stream.on('end', () => {
        if (dropped) return;
        if (behaviour.dataReply) return cb(Object.assign(new Error(behaviour.dataReply.message), { responseCode: behaviour.dataReply.code }));
        messages.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          remoteAddress: session.remoteAddress,
          clientHostname: session.hostNameAppearsAs,
        });
        cb(null, `OK ids=sink-${messages.length}`);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  const port = ((server.server as unknown as { address(): AddressInfo }).address()).port;
  return {
    port,
    messages,
    behaviour,
    connections: () => opened,
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of (server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections) conn._socket.destroy();
        server.close(() => resolve());
      }),
  };
}
