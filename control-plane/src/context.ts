/**
 * The composition root: the one place that turns a validated Config into connected adapters. Tests
 * build their context here too, with `overrides` for what they need to control (the clock, the logger).
 */
import type { Config } from './config/config.js';
import { createDb, type Db } from './adapters/pg/database.js';
import { createRedis, type Redis } from './adapters/redis/redis.js';
import { SecretBox } from './adapters/crypto/secret-box.js';
import { createLogger, type Logger } from './adapters/logger.js';
import { PolicySigner } from './adapters/crypto/policy-signer.js';
import { Metrics } from './adapters/metrics/metrics.js';

export interface AppContext {
  config: Config;
  db: Db;
  redis: Redis;
  secretBox: SecretBox;
  policySigner: PolicySigner;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
  close(): Promise<void>;
}

export interface ContextOverrides {
  log?: Logger;
  now?: () => Date;
}

export async function createContext(config: Config, overrides: ContextOverrides = {}): Promise<AppContext> {
  const log = overrides.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  const { db } = createDb(
    config.databaseUrl,
    // the process's code spans tenants (operators, workers, nodes, the gateway); a tenant-token request
    // narrows its own transaction to its tenant (adapters/pg/scope.ts)
    { scope: 'platform', max: config.databasePoolMax, connectTimeoutMs: config.databaseTimeouts.connectMs, statementTimeoutMs: config.databaseTimeouts.statementMs },
    (seconds) => metrics.dbQueryDuration.observe(seconds),
  );
  const redis = createRedis(config.redisUrl);
  redis.on('error', (e: Error) => log.warn({ err: { message: e.message } }, 'redis connection problem'));
  await redis.connect().catch((e: Error) => log.warn({ err: { message: e.message } }, 'redis not reachable at start-up; will retry'));
  return {
    config,
    db,
    redis,
    secretBox: new SecretBox(config.masterKeys),
    policySigner: new PolicySigner(config.policySigningSeed),
    log,
    metrics,
    now: overrides.now ?? (() => new Date()),
    async close() {
      redis.disconnect();
      await db.destroy();
    },
  };
}
