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
import { Resolver } from 'node:dns/promises';
import type { CloudProvider } from './domain/provisioning/cloud-provider.js';
import { HetznerCloudProvider } from './adapters/hetzner/hetzner-cloud-provider.js';
import { ProjectBudget } from './adapters/hetzner/transport.js';

/** What a provider project's client is built from (its token only ever here and in the adapter). */
export interface ProviderProjectConnection {
  id: string;
  provider: 'hetzner';
  name: string;
  apiUrl: string;
  token: string;
}

export interface AppContext {
  config: Config;
  db: Db;
  redis: Redis;
  secretBox: SecretBox;
  policySigner: PolicySigner;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
  /** the cloud provider client of one provider project (one request budget per project per process) */
  cloudProvider: (project: ProviderProjectConnection) => CloudProvider;
  /** A/AAAA addresses of a name, for forward-confirmed reverse DNS; [] when it has none */
  resolveAddresses: (name: string) => Promise<string[]>;
  close(): Promise<void>;
}

export interface ContextOverrides {
  log?: Logger;
  now?: () => Date;
  /** tests: a provider client against a fake API, or with shorter retries */
  cloudProvider?: (project: ProviderProjectConnection) => CloudProvider;
  /** tests: a resolver pointed at the test DNS server */
  resolveAddresses?: (name: string) => Promise<string[]>;
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
    cloudProvider: overrides.cloudProvider ?? hetznerProviders(),
    resolveAddresses: overrides.resolveAddresses ?? systemResolver(),
    async close() {
      redis.disconnect();
      await db.destroy();
    },
  };
}

/** One budget per project, shared by every client of it in this process (API handlers and jobs). */
function hetznerProviders(): (p: ProviderProjectConnection) => CloudProvider {
  const budgets = new Map<string, ProjectBudget>();
  return (p) => {
    let budget = budgets.get(p.id);
    if (!budget) budgets.set(p.id, (budget = new ProjectBudget({ nowMs: Date.now() })));
    return new HetznerCloudProvider({ token: p.token, project: p.name, baseUrl: p.apiUrl, budget });
  };
}

function systemResolver(): (name: string) => Promise<string[]> {
  const r = new Resolver({ timeout: 5000, tries: 2 });
  const quiet = (p: Promise<string[]>) => p.catch((e: NodeJS.ErrnoException) => (e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? [] : Promise.reject(e)));
  return async (name) => [...(await quiet(r.resolve4(name))), ...(await quiet(r.resolve6(name)))];
}
