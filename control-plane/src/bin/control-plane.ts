/**
 * The control plane process: runs the roles named in CP_ROLES (all of them by default) against the
 * shared PostgreSQL and Redis. Every role is stateless, so operators scale out by running more.
 */
import { serve } from '@hono/node-server';
import { createContext } from '../context.js';
import { migrate } from '../adapters/pg/migrator.js';
import { rowSecurityBypassed } from '../adapters/pg/scope.js';
import { newApp } from '../http/app.js';
import { startApiServer } from '../http/server.js';
import { bootstrapFirstOperator } from '../app/api-tokens.js';
import { startJobRunner } from '../worker/job-runner.js';
import { allJobs } from '../worker/jobs.js';
import { autopilotJob } from '../app/jobs/autopilot-job.js';
import { loadConfigOrExit } from './load-config.js';
import { startSubmissionGateway } from '../gateway/submission-gateway.js';
import { startDependencyProbe } from '../app/observability/dependency-probe.js';
import { Hono } from 'hono';

const config = loadConfigOrExit();
const ctx = await createContext(config);
const log = ctx.log;
const stops: (() => Promise<void>)[] = [];

// replicas starting together are serialised by the migrator's advisory lock
const report = await migrate(config.migrationDatabaseUrl);
log.info({ applied: report.applied, already: report.alreadyApplied.length }, 'schema is current');
if (await rowSecurityBypassed(ctx.db)) {
  log.warn('DATABASE_URL connects as a superuser or a BYPASSRLS role: row-level security does not hold, tenant isolation is the application\'s alone (README, Database roles)');
}

if (config.bootstrapTokenFile) {
  const file = await bootstrapFirstOperator(ctx, config.bootstrapTokenFile).catch((e: Error) => {
    log.warn({ err: { message: e.message } }, 'bootstrap operator not created (another replica may have done it)');
    return null;
  });
  if (file) log.warn({ file }, 'no operator existed: created admin@localhost and wrote its admin token to this file');
}

if (config.roles.includes('api')) {
  // HTTPS when CP_HTTP_TLS_CERT_FILE is set (its files reloaded on change), else HTTP on loopback
  const api = await startApiServer(ctx, newApp(ctx));
  stops.push(() => api.close());
}

if (config.roles.includes('worker')) {
  stops.push(startJobRunner(ctx, allJobs(config), config.worker.tickMs));
  // the autopilot on a timer of its own: an urgent change must not wait behind a slow job
  stops.push(startJobRunner(ctx, [autopilotJob(config.worker.autopilotIntervalMs)], config.worker.autopilotIntervalMs));
  log.info({ role: 'worker' }, 'background jobs started');
}

// a process without the api role still answers /metrics, on its own port
const stopProbe = startDependencyProbe(ctx);
stops.push(async () => stopProbe());
if (!config.roles.includes('api')) {
  const metricsApp = new Hono();
  metricsApp.get('/metrics', async (c) => {
    if (config.metricsToken && c.req.header('authorization') !== `Bearer ${config.metricsToken}`) return c.text('unauthorized', 401);
    return c.body(await ctx.metrics.text(), 200, { 'content-type': ctx.metrics.contentType });
  });
  const metricsServer = serve({ fetch: metricsApp.fetch, hostname: config.http.host, port: config.metricsPort }, (info) => {
    log.info({ address: info.address, port: info.port }, `metrics on http://${info.address}:${info.port}/metrics`);
  });
  stops.push(() => new Promise((resolve) => metricsServer.close(() => resolve())));
}

if (config.roles.includes('gateway')) {
  const gateway = await startSubmissionGateway(ctx, config.gateway);
  stops.push(() => gateway.close());
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void Promise.allSettled(stops.map((s) => s()))
      .then(() => ctx.close())
      .finally(() => log.flush(() => process.exit(0)));
  });
}
