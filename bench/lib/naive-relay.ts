/**
 * The naive relay the submission benchmark compares with: smtp-server with its defaults and a pooled
 * nodemailer transport, the way most Node projects first relay mail. It reads the whole message into
 * memory and answers 250 after the downstream server did, with no checks.
 *
 *   tsx bench/lib/naive-relay.ts <listen port> <downstream port>
 */
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';

const [listenPort, downstreamPort] = process.argv.slice(2).map(Number);
const transport = nodemailer.createTransport({ host: '127.0.0.1', port: downstreamPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 20, maxMessages: Infinity });
const server = new SMTPServer({
  authOptional: true,
  disableReverseLookup: true,
  hideSTARTTLS: true,
  logger: false,
  onData(stream, session, cb) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      transport
        .sendMail({ envelope: { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) }, raw: Buffer.concat(chunks) })
        .then(() => cb(), (e: Error) => cb(Object.assign(e, { responseCode: 451 })));
    });
  },
});
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
