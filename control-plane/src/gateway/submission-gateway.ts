/**
 * The SMTP submission gateway: where tenants hand over their mail. Listens on 587 (STARTTLS before
 * AUTH) and 465 (implicit TLS); knows the tenant from AUTH or from a bound submission network; checks
 * the envelope sender and header From against the tenant's verified domains; gates every recipient
 * (suppression, warming lane, trust lock, external budget); and relays through a kumod node, answering
 * 250 only after kumod did.
 *
 * What it knows of a tenant is cached (SubmissionFacts) and kept fresh by PostgreSQL's change
 * notifications (PgChangeFeed), with CP_SMTP_FACTS_TTL_MS as the fallback; it is read again at every
 * MAIL, RCPT and DATA, so a lock, suspension or revocation reaches an open session at its next command.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { AppContext } from '../context.js';
import type { GatewayConfig } from '../config/config.js';
import { RelayPool } from '../adapters/smtp/relay-pool.js';
import { isRelayFailure, RelayTransaction } from '../adapters/smtp/relay-transaction.js';
import type { SmtpReply } from '../adapters/smtp/relay-connection.js';
import { SubmissionAuthenticator } from '../app/submission/authenticate.js';
import { RecipientIndex } from '../app/submission/recipient-index.js';
import { newMessageBudget, RecipientGate, type MessageBudget } from '../app/submission/gate-recipient.js';
import { FactsUnavailableError, SubmissionFacts, type TenantSubmissionFacts } from '../app/submission/submission-facts.js';
import { PgChangeFeed, type ChangeFeed } from '../adapters/pg/change-feed.js';
import { addressDomain } from '../domain/submission/addresses.js';
import { smtpReply, type Lane } from '../domain/submission/gate.js';
import { checkAndRewriteHeaders, headerEnd, headerValues, MAX_HEADER_BYTES } from '../domain/submission/message-headers.js';
import { referencedWarmingIds } from '../domain/warming/messages.js';
import { recordWarmingEngagement } from '../app/warming/engagement.js';
import { tuneSmtpServer } from './smtp-server-tuning.js';

/** What the gateway reports as it works; issue 8's metrics hang off this. */
export interface GatewayObserver {
  gate(reason: 'accepted_external' | 'accepted_warming' | 'suppressed' | 'locked' | 'budget' | 'warming_schedule' | 'unavailable', seconds: number): void;
  transaction(outcome: 'accepted' | 'refused' | 'deferred', seconds: number, recipients: number, bytes: number): void;
  auth(outcome: 'ok' | 'invalid' | 'locked_out' | 'unavailable'): void;
  relayError(kind: string): void;
}

/** The observer that feeds the process's Prometheus metrics. */
export function metricsObserver(m: AppContext['metrics']): GatewayObserver {
  return {
    gate(reason, seconds) {
      m.gateDecisions.inc({ reason });
      m.gateDuration.observe(seconds);
    },
    transaction(outcome, seconds, recipients, bytes) {
      m.smtpTransactions.inc({ outcome });
      m.smtpDuration.observe({ outcome }, seconds);
      if (outcome === 'accepted') {
        m.smtpRecipients.inc(recipients);
        m.smtpBytes.inc(bytes);
      }
    },
    auth(outcome) {
      m.smtpAuth.inc({ outcome });
    },
    relayError(stage) {
      m.relayErrors.inc({ stage });
    },
  };
}

interface GatewaySession {
  tenantId: string | null;
  /** the platform's warming agent: the tenant comes from each message's sender */
  warmingAgent: boolean;
  /** the SMTP credential the session authenticated with (null: a bound network, or the warming agent) */
  credentialId: string | null;
  /** that credential was found revoked: a revocation is for good, so it is not looked up again */
  revoked: boolean;
  /** the tenant counted against its connection limit for this session */
  counted: string | null;
  /** the facts the last command was decided on (read again at every MAIL, RCPT and DATA) */
  facts: TenantSubmissionFacts | null;
  mailFrom: string | null;
  mailParams: string;
  lane: Lane | null;
  tx: RelayTransaction | null;
  budget: MessageBudget;
  /** the tenant's own warming-network recipients in this message, charged to its plan on 250 */
  warmingRecipients: number;
  startedAt: number;
}

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

class Refusal extends Error {
  constructor(
    readonly responseCode: number,
    enhanced: string,
    text: string,
  ) {
    super(`${enhanced} ${text.replace(/[\r\n]+/g, ' ')}`);
  }
}

const refusal = (r: SmtpReply): Refusal => new Refusal(r.code, r.enhanced ?? (r.code >= 500 ? '5.0.0' : '4.0.0'), r.text);

/** "::ffff:192.0.2.1" is how an IPv4 peer shows on a dual-stack socket; networks are stored as IPv4. */
const peerAddress = (a: string): string => a.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');

export async function startSubmissionGateway(ctx: AppContext, cfg: GatewayConfig, observer: GatewayObserver = metricsObserver(ctx.metrics)): Promise<SubmissionGateway> {
  tuneSmtpServer();
  const log = ctx.log.child({ component: 'gateway' });
  const facts = new SubmissionFacts(ctx.db, cfg.factsTtlMs, ctx.now, undefined, (e) => log.warn({ err: { message: e.message } }, 'refreshing submission facts failed; they expire by their TTL'));
  const auth = new SubmissionAuthenticator(ctx.db, ctx.redis, { failureLimit: cfg.authFailureLimit, lockoutSeconds: cfg.authLockoutSeconds, rememberMs: cfg.factsTtlMs }, ctx.config.pseudonymKey);
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
  const gate = new RecipientGate(ctx, cfg.budgetCacheMs, index);
  const sessions = new Map<string, GatewaySession>();
  const perTenant = new Map<string, number>();
  const tls = { key: readFileSync(cfg.tlsKeyFile), cert: readFileSync(cfg.tlsCertFile) };

  const stateOf = (session: SMTPServerSession): GatewaySession => {
    let s = sessions.get(session.id);
    if (!s) {
      s = { tenantId: null, warmingAgent: false, credentialId: null, revoked: false, counted: null, facts: null, mailFrom: null, mailParams: '', lane: null, tx: null, budget: newMessageBudget(), warmingRecipients: 0, startedAt: 0 };
      sessions.set(session.id, s);
    }
    return s;
  };

  /** Count the session against its tenant's limit; false when the tenant is at its limit. */
  const claim = (s: GatewaySession, tenantId: string): boolean => {
    if (s.counted === tenantId) return true;
    if ((perTenant.get(tenantId) ?? 0) >= cfg.maxConnectionsPerTenant) return false;
    release(s);
    perTenant.set(tenantId, (perTenant.get(tenantId) ?? 0) + 1);
    s.counted = tenantId;
    return true;
  };
  const release = (s: GatewaySession): void => {
    if (!s.counted) return;
    const n = (perTenant.get(s.counted) ?? 1) - 1;
    if (n <= 0) perTenant.delete(s.counted);
    else perTenant.set(s.counted, n);
    s.counted = null;
  };

  /**
   * The tenant's facts as of now, and whether the session may still send on them: the tenant is
   * active and the credential it authenticated with is not revoked. Asked at MAIL, RCPT and DATA.
   */
  const currentFacts = async (s: GatewaySession): Promise<TenantSubmissionFacts> => {
    const revoked = () => new Refusal(530, '5.7.0', 'the credential this session authenticated with has been revoked');
    if (s.revoked) throw revoked();
    if (!s.tenantId) throw new Refusal(530, '5.7.0', 'authentication required');
    let f = await facts.tenant(s.tenantId);
    // a credential created a moment ago may not be in facts cached just before: ask before refusing
    if (f && s.credentialId && !f.activeCredentialIds.has(s.credentialId)) f = await facts.freshTenant(s.tenantId);
    if (!f || !f.active) throw new Refusal(550, '5.7.1', 'this tenant is suspended from sending');
    if (s.credentialId && !f.activeCredentialIds.has(s.credentialId)) {
      s.revoked = true;
      throw revoked();
    }
    return f;
  };

  const abandon = async (s: GatewaySession): Promise<void> => {
    const tx = s.tx;
    s.tx = null;
    s.lane = null;
    if (tx) await tx.abandon();
  };

  const options = {
    name: cfg.hostname,
    banner: 'submission service ready',
    size: cfg.maxMessageBytes,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    allowInsecureAuth: false,
    disableReverseLookup: true,
    maxClients: cfg.maxClients,
    socketTimeout: cfg.idleTimeoutMs,
    // sessions from bound networks never authenticate; MAIL refuses anyone who is nobody
    maxAllowedUnauthenticatedCommands: false as const,
    hideDSN: true,
    // neither is honoured on the way to kumod, so neither is offered
    hideSMTPUTF8: true,
    hideREQUIRETLS: true,
    logger: false,
    key: tls.key,
    cert: tls.cert,

    onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const s = stateOf(session);
      facts
        .networkTenant(peerAddress(session.remoteAddress))
        .then((tenantId) => {
          if (tenantId) {
            if (!claim(s, tenantId)) return cb(new Refusal(421, '4.7.0', 'too many concurrent sessions for this tenant: try again shortly'));
            s.tenantId = tenantId;
          }
          cb();
        })
        .catch((e: Error) => {
          log.error({ err: { message: e.message } }, 'submission network lookup failed');
          cb(new Refusal(421, '4.3.0', 'service temporarily unavailable: try again later'));
        });
    },

    onAuth(a: { method: string; username?: string | undefined; password?: string | null | undefined }, session: SMTPServerSession, cb: (err: Error | null | undefined, response?: { user: unknown }) => void) {
      const s = stateOf(session);
      auth
        .authenticate(a.username ?? '', a.password ?? '', peerAddress(session.remoteAddress))
        .then((r) => {
          observer.auth(r.ok ? 'ok' : r.reason);
          if (!r.ok) {
            log.info({ session: session.id, ip: session.remoteAddress, reason: r.reason }, 'authentication refused');
            return cb(new Refusal(r.code, r.enhanced, r.message));
          }
          if (r.warmingAgent) {
            s.warmingAgent = true;
            return cb(null, { user: r.username });
          }
          if (!claim(s, r.tenantId)) return cb(new Refusal(454, '4.7.0', 'too many concurrent sessions for this tenant: try again shortly'));
          s.tenantId = r.tenantId;
          s.credentialId = r.credentialId;
          log.debug({ session: session.id, tenant: r.tenantId, credential: r.credentialId }, 'authenticated');
          cb(null, { user: r.tenantId });
        })
        .catch((e: Error) => {
          log.error({ err: { message: e.message } }, 'authentication failed with an error');
          cb(new Refusal(454, '4.7.0', 'temporary authentication failure: try again later'));
        });
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const s = stateOf(session);
      void (async () => {
        await abandon(s);
        if (s.warmingAgent) {
          // the agent writes as a peer of the network: that peer's tenant is the sender
          const member = address.address ? await facts.warmingPeer(address.address) : null;
          if (!member) throw new Refusal(553, '5.7.1', 'the warming agent sends only from warming-network peers');
          s.tenantId = member.tenantId;
        }
        const f = await currentFacts(s);
        if (address.address === '') throw new Refusal(553, '5.7.1', 'a null sender cannot be submitted here');
        const domain = addressDomain(address.address);
        if (!domain) throw new Refusal(553, '5.1.7', 'the sender address is not a plain address');
        if (!f.verifiedDomains.has(domain)) throw new Refusal(553, '5.7.1', `sender domain ${domain} is not a verified sending domain of this tenant`);
        const args = (address.args || {}) as Record<string, string | boolean>;
        const body = typeof args.BODY === 'string' ? args.BODY.toUpperCase() : null;
        if (args.SMTPUTF8) throw new Refusal(555, '5.6.7', 'SMTPUTF8 is not supported for submission');
        s.facts = f;
        s.mailFrom = address.address;
        s.mailParams = body === '8BITMIME' || body === '7BIT' ? `BODY=${body}` : '';
        s.budget = newMessageBudget();
        s.warmingRecipients = 0;
        s.startedAt = performance.now();
      })().then(
        () => cb(),
        (e: Error) => cb(e instanceof Refusal ? e : internal(e)),
      );
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const s = stateOf(session);
      void (async () => {
        if (!s.facts || !s.mailFrom) throw new Refusal(503, '5.5.1', 'MAIL first');
        const f = await currentFacts(s);
        s.facts = f;
        if (session.envelope.rcptTo.length >= cfg.maxRecipients) throw new Refusal(452, '4.5.3', `too many recipients: at most ${cfg.maxRecipients} per message, send the rest in another`);
        const rcpt = address.address;
        if (!addressDomain(rcpt)) throw new Refusal(501, '5.1.3', 'the recipient address is not a plain address');
        const t0 = performance.now();
        // a tenant's own warming mail counts against its plan for the day; the agent's is the plan
        const d = await gate.decide(f, rcpt, s.budget, s.warmingAgent ? null : async () => {
          const left = await warmingLeftToday(f);
          return left === null ? null : left - s.warmingRecipients;
        });
        if (s.warmingAgent && d.accept && d.lane !== 'warming') throw new Refusal(550, '5.7.1', 'the warming agent sends only to warming-network members');
        const countsAgainstPlan = d.accept && d.lane === 'warming' && !s.warmingAgent;
        observer.gate(d.accept ? (d.lane === 'external' ? 'accepted_external' : 'accepted_warming') : d.reason, (performance.now() - t0) / 1000);
        if (!d.accept) {
          log.info({ session: session.id, tenant: f.tenantId, rcpt_domain: addressDomain(rcpt), reason: d.reason }, 'recipient refused by the gate');
          throw new Refusal(d.code, d.enhanced, smtpReply(d).slice(10));
        }
        if (s.lane && s.lane !== d.lane) {
          throw new Refusal(452, '4.5.3', `this recipient goes on the ${d.lane} lane and the message already has ${s.lane} recipients: send it in a separate message`);
        }
        if (!s.tx) {
          s.lane = d.lane;
          s.tx = new RelayTransaction(pool, f.relayNodes[d.lane], s.mailFrom, s.mailParams);
        }
        const r = await s.tx.addRecipient(rcpt);
        if (r.code !== 250 && r.code !== 251) {
          if (isRelayFailure(r)) observer.relayError('recipient');
          throw refusal(r);
        }
        // counted once kumod has the recipient: a plan is spent by mail that went, not mail that was tried
        if (countsAgainstPlan) s.warmingRecipients++;
      })().then(
        () => cb(),
        (e: Error) => cb(e instanceof Refusal ? e : internal(e)),
      );
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) {
      const s = stateOf(session);
      const tx = s.tx;
      const lane = s.lane;
      s.tx = null;
      s.lane = null;
      const recipients = session.envelope.rcptTo.length;
      const done = (outcome: 'accepted' | 'refused' | 'deferred', bytes: number) => observer.transaction(outcome, (performance.now() - s.startedAt) / 1000, recipients, bytes);
      void (async () => {
        if (!tx || !s.facts || !lane) throw new Refusal(451, '4.4.1', 'no relay transaction is open: try again');
        let bytes = 0;
        const overLimit = (): SmtpReply | null =>
          stream.sizeExceeded || bytes > cfg.maxMessageBytes ? { code: 552, enhanced: '5.3.4', text: `the message is larger than the limit of ${cfg.maxMessageBytes} bytes` } : null;

        // collect the header block (bounded), then stream everything after it
        const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        // smtp-server answers only once the data has ended, so a refused message is still read to its end
        const drain = async (): Promise<void> => {
          for (let next = await iterator.next(); !next.done; next = await iterator.next()) bytes += next.value.length;
        };
        let head: Buffer = Buffer.alloc(0);
        let end = -1;
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          bytes += next.value.length;
          head = head.length === 0 ? next.value : Buffer.concat([head, next.value]);
          end = headerEnd(head);
          if (end >= 0) break;
          if (head.length > MAX_HEADER_BYTES) {
            await tx.abandon();
            await drain();
            throw new Refusal(552, '5.3.4', `the header block is larger than ${MAX_HEADER_BYTES} bytes`);
          }
        }
        // the message is answered on what is true now, not on what was true at its last RCPT
        const f = await currentFacts(s).catch(async (e: unknown) => {
          await tx.abandon();
          await drain();
          throw e;
        });
        s.facts = f;
        // a message of headers only (no blank line) is all header block
        const block = end >= 0 ? head.subarray(0, end) : head;
        const rest = end >= 0 ? head.subarray(end) : Buffer.alloc(0);
        const headerText = block.toString('latin1');
        const checked = checkAndRewriteHeaders(headerText, { tenantId: f.tenantId, lane, verifiedDomains: f.verifiedDomains });
        if (!checked.ok) {
          await tx.abandon();
          await drain();
          throw new Refusal(checked.code, checked.enhanced, checked.message);
        }
        const replyTo = referencedWarmingIds(headerValues(headerText, ['In-Reply-To', 'References']));
        if (checked.stripped.length > 0) log.info({ session: session.id, tenant: f.tenantId, headers: checked.stripped }, 'removed trusted headers the client sent');
        async function* body(): AsyncGenerator<Buffer> {
          if (rest.length > 0) yield rest;
          for (;;) {
            const next = await iterator.next();
            if (next.done) return;
            bytes += next.value.length;
            yield next.value;
          }
        }
        const reply = await tx.sendData(Buffer.from(checked.headers, 'latin1'), body(), overLimit);
        await drain();
        if (reply.code === 250) {
          done('accepted', bytes);
          if (s.warmingRecipients > 0) void countWarming(f.tenantId, s.warmingRecipients);
          // a reply to warming mail coming back through the platform is engagement with it
          for (const id of replyTo) void recordWarmingEngagement(ctx, { message_id: id, kind: 'reply' }).catch((e: Error) => log.warn({ err: { message: e.message } }, 'could not record a warming reply'));
          log.info({ session: session.id, tenant: f.tenantId, lane, node: tx.nodeName, recipients, bytes }, 'message relayed');
          return `${reply.enhanced ?? '2.0.0'} ${reply.text}`;
        }
        if (isRelayFailure(reply)) observer.relayError('data');
        throw refusal(reply);
      })().then(
        (message) => cb(null, message),
        (e: Error) => {
          const r = e instanceof Refusal ? e : internal(e);
          done(r.responseCode >= 500 ? 'refused' : 'deferred', 0);
          if (r.responseCode !== 552) log.info({ session: session.id, tenant: s.facts?.tenantId ?? s.tenantId, code: r.responseCode, reply: r.message }, 'message not relayed');
          cb(r);
        },
      );
    },

    onClose(session: SMTPServerSession) {
      const s = sessions.get(session.id);
      if (!s) return;
      sessions.delete(session.id);
      release(s);
      void abandon(s);
    },
  };

  const day = () => ctx.now().toISOString().slice(0, 10);
  const warmingKey = (tenantId: string) => `kcp:warming-accepted:${tenantId}:${day()}`;
  const warmingLeftToday = async (f: TenantSubmissionFacts): Promise<number | null> => {
    if (ctx.redis.status !== 'ready') return null;
    const used = Number((await ctx.redis.get(warmingKey(f.tenantId)).catch(() => '0')) ?? 0);
    return f.warmingPlannedToday - used;
  };
  const countWarming = async (tenantId: string, n: number): Promise<void> => {
    await ctx.redis.multi().incrby(warmingKey(tenantId), n).expire(warmingKey(tenantId), 2 * 86_400).exec().catch(() => undefined);
  };

  const internal = (e: Error): Refusal => {
    // PostgreSQL away is an outage to report, not a bug to trace
    if (e instanceof FactsUnavailableError) log.warn({ err: { message: e.message } }, 'submission facts unavailable');
    else log.error({ err: { message: e.message, stack: e.stack } }, 'gateway error');
    return new Refusal(451, '4.3.0', 'local error in processing: try again later');
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
