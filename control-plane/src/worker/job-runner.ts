/**
 * Background jobs, safe to run on any number of replicas: each job runs under a transaction-scoped
 * PostgreSQL advisory lock taken with pg_try_advisory_xact_lock, so while one replica runs a job the
 * others skip it (no waiting, no double work), and a crashed replica's lock vanishes with its session.
 * Row-level work inside jobs additionally uses FOR UPDATE SKIP LOCKED.
 */
import { sql } from 'kysely';
import type { AppContext } from '../context.js';
import type { Tx } from '../adapters/pg/database.js';

export interface Job {
  /** stable name; its hash is the advisory-lock key */
  name: string;
  intervalMs: number;
  run(ctx: AppContext, tx: Tx): Promise<{ didWork: boolean; detail?: Record<string, unknown> }>;
}

export type JobOutcome = 'ran' | 'skipped_locked' | 'failed';

/** Run one job once, if no other replica holds it. */
export async function runJobOnce(ctx: AppContext, job: Job): Promise<JobOutcome> {
  const outcome = await runJobOnceUncounted(ctx, job);
  ctx.metrics.jobRuns.inc({ job: job.name, outcome });
  return outcome;
}

async function runJobOnceUncounted(ctx: AppContext, job: Job): Promise<JobOutcome> {
  try {
    return await ctx.db.transaction().execute(async (tx) => {
      const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(hashtext(${'kcp-job:' + job.name})) AS locked`.execute(tx);
      if (!rows[0]?.locked) return 'skipped_locked';
      const result = await job.run(ctx, tx);
      if (result.didWork) ctx.log.info({ job: job.name, ...result.detail }, 'job did work');
      return 'ran';
    });
  } catch (e) {
    ctx.log.error({ job: job.name, err: e }, 'job failed');
    return 'failed';
  }
}

/** Tick every `tickMs`, running each job whose interval has passed. Returns a stop function. */
export function startJobRunner(ctx: AppContext, jobs: Job[], tickMs: number): () => Promise<void> {
  const lastRun = new Map<string, number>();
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (const job of jobs) {
      if (stopped) return;
      const now = Date.now();
      if (now - (lastRun.get(job.name) ?? 0) < job.intervalMs) continue;
      lastRun.set(job.name, now);
      await runJobOnce(ctx, job);
    }
  };
  const timer = setInterval(() => {
    current = current.then(tick);
  }, tickMs);
  current = current.then(tick);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await current;
  };
}
