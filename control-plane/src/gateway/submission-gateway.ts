/**
 * The SMTP submission gateway: where tenants hand over their mail. Listens on 587 (STARTTLS before
 * AUTH) and 465 (implicit TLS); knows the tenant from AUTH or from a bound submission network; checks
 * the envelope sender and the message's author headers against the tenant's verified domains; gates
 * every recipient (suppression, warming lane, trust lock, external budget); and relays through a kumod
 * node, answering 250 only after kumod did.
 *
 * This file is the wiring (as WildDuck's lmtp/imap servers wire their handlers): it builds what the
 * stages share (deps.ts), configures smtp-server, and hands each hook to its stage under stages/
 * (connect, auth, mail, rcpt, data, close). Session state is in session.ts, every reply the gateway
 * itself gives in domain/submission/replies.ts.
 *
 * What it knows of a tenant is cached (SubmissionFacts) and kept fresh by PostgreSQL's change
 * notifications (PgChangeFeed), with CP_SMTP_FACTS_TTL_MS as the fallback; it is read again at every
 * MAIL, RCPT and DATA, so a lock, suspension or revocation reaches an open session at its next command.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { AppContext } from '../context.js';
import type { GatewayConfig } from '../config/config.js';
import { RelayPool } from '../adapters/smtp/relay-pool.js';
import { PgChangeFeed, type ChangeFeed } from '../adapters/pg/change-feed.js';
import { SubmissionAuthenticator } from '../app/submission/authenticate.js';
import { RecipientIndex } from '../app/submission/recipient-index.js';
import { RecipientGate } from '../app/submission/gate-recipient.js';
import { SubmissionFacts } from '../app/submission/submission-facts.js';
import { WarmingAllowance } from '../app/submission/warming-allowance.js';
import type { GatewayDeps } from './deps.js';
import { metricsObserver, type GatewayObserver } from './observer.js';
import { asRefusal } from './refusal.js';
import { SessionRegistry } from './session.js';
import { MAX_COMMANDS_BEFORE_AUTH, tuneSmtpServer } from './smtp-server-tuning.js';
import { handleConnect } from './stages/connect.js';
import { handleAuth } from './stages/auth.js';
import { handleMailFrom } from './stages/mail.js';
import { handleRcptTo } from './stages/rcpt.js';
import { handleData } from './stages/data.js';
import { handleClose } from './stages/close.js';

export { metricsObserver, type GatewayObserver } from './observer.js';

export interface SubmissionGateway {
  submissionPort: number;
  tlsPort: number | null;
  pool: RelayPool;
  facts: SubmissionFacts;
  /** the change notifications that keep `facts` fresh */
  changes: ChangeFeed;
  /** re-read suppressions and warming members now instead of within the second */
  refreshIndex(): Promise<void>;
  close(): Promise<void>;
}

export async function startSubmissionGateway(ctx: AppContext, cfg: GatewayConfig, observer: GatewayObserver = metricsObserver(ctx.metrics)): Promise<SubmissionGateway> {
  tuneSmtpServer();
  const log = ctx.log.child({ component: 'gateway' });
  const facts = new SubmissionFacts(ctx.db, cfg.factsTtlMs, ctx.now, undefined, (e) => log.warn({ err: { message: e.message } }, 'refreshing submission facts failed; they expire by their TTL'));
  const auth = new SubmissionAuthenticator(
    ctx.db,
    ctx.redis,
    { failureLimit: cfg.authFailureLimit, sourceFailureLimit: cfg.authSourceFailureLimit, lockoutSeconds: cfg.authLockoutSeconds, maxDelayMs: cfg.authMaxDelayMs, rememberMs: cfg.factsTtlMs },
    ctx.config.pseudonymKey,
  );
  const pool = new RelayPool({ ehloName: cfg.hostname, ...cfg.relay, log, onHealth: (node, up) => ctx.metrics.relayNodeUp.set({ node: node.name }, up ? 1 : 0) });
  const index = new RecipientIndex(ctx.db, log, cfg.factsTtlMs);
  const changes = new PgChangeFeed(ctx.config.databaseUrl, log);
  changes.subscribe((change) => {
    facts.apply(change);
    auth.forget(change);
  });
  // with no TTL nothing is cached, so there is nothing to keep fresh
  if (cfg.factsTtlMs > 0) await changes.start();
  await index.start();

  const deps: GatewayDeps = {
    ctx,
    cfg,
    log,
    observer,
    facts,
    auth,
    gate: new RecipientGate(ctx, cfg.budgetCacheMs, index),
    pool,
    warming: new WarmingAllowance(ctx.redis, ctx.now, log),
    sessions: new SessionRegistry(cfg.maxConnectionsPerTenant),
    newMessageIdToken: () => `${Date.now().toString(36)}.${randomBytes(12).toString('hex')}`,
  };
  /** A stage's promise, answered through smtp-server's callback: its value, or the refusal. */
  const answer = <T>(p: Promise<T>, cb: (err: Error | null, value?: T) => void): void => {
    p.then(
      (v) => cb(null, v),
      (e: unknown) => cb(asRefusal(e, log)),
    );
  };

  const tls = { key: readFileSync(cfg.tlsKeyFile), cert: readFileSync(cfg.tlsCertFile) };
  const options: SMTPServerOptions & { [MAX_COMMANDS_BEFORE_AUTH]: number } = {
    name: cfg.hostname,
    banner: 'submission service ready',
    size: cfg.maxMessageBytes,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    allowInsecureAuth: false,
    disableReverseLookup: true,
    maxClients: cfg.maxClients,
    socketTimeout: cfg.idleTimeoutMs,
    // smtp-server's own cap counts only when AUTH is required of everyone; ours (smtp-server-tuning.ts)
    // spares the bound networks, which never authenticate, and MAIL refuses anyone who is nobody
    maxAllowedUnauthenticatedCommands: false,
    [MAX_COMMANDS_BEFORE_AUTH]: cfg.maxUnauthenticatedCommands,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    // neither is honoured on the way to kumod, so neither is offered
    hideSMTPUTF8: true,
    hideREQUIRETLS: true,
    logger: false,
    key: tls.key,
    cert: tls.cert,
    onConnect: (session, cb) => answer(handleConnect(deps, session), cb),
    onAuth: (a, session, cb) => answer(handleAuth(deps, a, session), cb),
    onMailFrom: (address, session, cb) => answer(handleMailFrom(deps, address, session), cb),
    onRcptTo: (address, session, cb) => answer(handleRcptTo(deps, address, session), cb),
    onData: (stream, session, cb) => answer(handleData(deps, stream, session), cb),
    onClose: (session) => handleClose(deps, session),
  };

  const starttls = new SMTPServer({ ...options, secure: false });
  const implicit = cfg.tlsPort >= 0 ? new SMTPServer({ ...options, secure: true }) : null;
  for (const server of [starttls, implicit]) {
    server?.on('error', (e: Error) => log.warn({ err: { message: e.message } }, 'smtp server error'));
  }
  const listen = (server: SMTPServer, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, cfg.host, () => {
        server.off('error', reject);
        resolve(((server.server as unknown as { address(): AddressInfo }).address()).port);
      });
    });
  const submissionPort = await listen(starttls, cfg.submissionPort);
  const tlsPort = implicit ? await listen(implicit, cfg.tlsPort) : null;
  log.info({ role: 'gateway', host: cfg.host, submission_port: submissionPort, tls_port: tlsPort }, 'SMTP submission gateway listening');

  return {
    submissionPort,
    tlsPort,
    pool,
    facts,
    changes,
    refreshIndex: () => index.refresh(),
    async close() {
      await Promise.all([starttls, implicit].filter((x): x is SMTPServer => x !== null).map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
      await pool.close();
      await index.stop();
      await changes.close();
    },
  };
}
