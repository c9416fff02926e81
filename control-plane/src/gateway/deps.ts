/** What every stage of the gateway works with, built once by the wiring (submission-gateway.ts). */
import type { AppContext } from '../context.js';
import type { GatewayConfig } from '../config/config.js';
import type { Logger } from '../adapters/logger.js';
import type { RelayPool } from '../adapters/smtp/relay-pool.js';
import type { SubmissionAuthenticator } from '../app/submission/authenticate.js';
import type { RecipientGate } from '../app/submission/gate-recipient.js';
import type { SubmissionFacts } from '../app/submission/submission-facts.js';
import type { WarmingAllowance } from '../app/submission/warming-allowance.js';
import type { GatewayObserver } from './observer.js';
import type { SessionRegistry } from './session.js';

export interface GatewayDeps {
  ctx: AppContext;
  cfg: GatewayConfig;
  log: Logger;
  observer: GatewayObserver;
  facts: SubmissionFacts;
  auth: SubmissionAuthenticator;
  gate: RecipientGate;
  pool: RelayPool;
  warming: WarmingAllowance;
  sessions: SessionRegistry;
  /** the unique left-hand side of a Message-ID the gateway adds */
  newMessageIdToken(): string;
}

/** "::ffff:192.0.2.1" is how an IPv4 peer shows on a dual-stack socket; networks are stored as IPv4. */
export const peerAddress = (a: string): string => a.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
