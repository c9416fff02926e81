/**
 * The API's listener: plain HTTP (loopback only; config.ts refuses it elsewhere) or HTTPS with the
 * certificate and key of CP_HTTP_TLS_CERT_FILE/CP_HTTP_TLS_KEY_FILE. The files are checked every
 * CP_HTTP_TLS_RELOAD_INTERVAL_MS; a changed pair (or client CA) that loads serves every connection
 * from then on (`setSecureContext`, no restart, open connections keep theirs); one that does not load
 * (half written, key and certificate that do not match, garbage) is logged and the previous one kept,
 * and it is tried again at the files' next change.
 *
 * With CP_HTTP_TLS_CLIENT_CA_FILE clients are asked for a certificate, which the handshake does not
 * insist on (operators' clients present none): the node routes decide (middleware/node-auth.ts).
 */
import { serve } from '@hono/node-server';
import { readFile, stat } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { HttpTlsConfig } from '../config/config.js';
import type { App } from './app.js';

export interface ApiServer {
  server: HttpServer | HttpsServer;
  scheme: 'http' | 'https';
  address: string;
  port: number;
  /** look at the TLS files now rather than at the next interval (resolves when done) */
  checkTls(): Promise<void>;
  close(): Promise<void>;
}

/** The certificate, key and client CA as a secure-context option set; throws when they do not load together. */
async function loadTls(tls: HttpTlsConfig): Promise<{ options: SecureContextOptions; subject: string; validTo: string; fingerprint256: string }> {
  const [cert, key, ca] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile), tls.clientCaFile ? readFile(tls.clientCaFile) : Promise.resolve(undefined)]);
  const options: SecureContextOptions = { cert, key, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) };
  // throws for a key that is not the certificate's, a file that is not PEM, a CA that does not parse
  createSecureContext(options);
  const leaf = new X509Certificate(cert);
  return { options, subject: leaf.subject.replace(/\n/g, ', '), validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 };
}

async function signature(files: string[]): Promise<string> {
  const parts = await Promise.all(
    files.map(async (f) => {
      try {
        const s = await stat(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    }),
  );
  return parts.join('|');
}

export async function startApiServer(ctx: AppContext, app: App, where: { host?: string; port?: number } = {}): Promise<ApiServer> {
  const { log, config } = ctx;
  const host = where.host ?? config.http.host;
  const port = where.port ?? config.http.port;
  const tls = config.httpTls;
  let stopWatch = (): void => {};
  let checkTls = async (): Promise<void> => {};
  let server: HttpServer | HttpsServer;

  if (!tls) {
    server = serve({ fetch: app.fetch, hostname: host, port }) as HttpServer;
  } else {
    const files = [tls.certFile, tls.keyFile, ...(tls.clientCaFile ? [tls.clientCaFile] : [])];
    let seen = await signature(files);
    const first = await loadTls(tls); // a pair that does not load at start-up stops the process
    log.info({ subject: first.subject, valid_to: first.validTo, fingerprint256: first.fingerprint256, client_ca: tls.clientCaFile !== null }, 'API TLS certificate loaded');
    const https = serve({
      fetch: app.fetch,
      hostname: host,
      port,
      createServer: createHttpsServer,
      serverOptions: { ...first.options, requestCert: tls.clientCaFile !== null, rejectUnauthorized: false },
    }) as HttpsServer;
    server = https;
    let running: Promise<void> | null = null;
    checkTls = () => {
      running ??= (async () => {
        const now = await signature(files);
        if (now === seen) return;
        seen = now;
        try {
          const next = await loadTls(tls);
          https.setSecureContext(next.options);
          log.info({ subject: next.subject, valid_to: next.validTo, fingerprint256: next.fingerprint256 }, 'API TLS certificate reloaded: new connections get it');
        } catch (e) {
          log.warn({ err: { message: (e as Error).message }, files }, 'API TLS files changed but do not load: kept the previous certificate');
        }
      })().finally(() => {
        running = null;
      });
      return running;
    };
    const timer = setInterval(() => void checkTls(), tls.reloadIntervalMs);
    timer.unref();
    stopWatch = () => clearInterval(timer);
  }

  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve();
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const info = server.address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  log.info({ role: 'api', address: info.address, port: info.port, tls: tls !== null, node_client_cert: config.nodeClientCert }, `admin API listening on ${scheme}://${info.address.includes(':') ? `[${info.address}]` : info.address}:${info.port}`);
  return {
    server,
    scheme,
    address: info.address,
    port: info.port,
    checkTls: () => checkTls(),
    close: () =>
      new Promise<void>((resolve) => {
        stopWatch();
        server.close(() => resolve());
        (server as HttpServer).closeAllConnections?.();
      }),
  };
}
