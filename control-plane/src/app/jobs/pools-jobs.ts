/** Worker jobs for pools: the placement engine, and the daily IP warm-up judgement. */
import type { Job } from '../../worker/job-runner.js';
import { runPlacementEngine } from '../pools/placement-engine.js';
import { runWarmup } from '../pools/warmup-job.js';

export function placementJob(intervalMs: number): Job {
  return {
    name: 'placement-engine',
    intervalMs,
    async run(ctx, tx) {
      const s = await runPlacementEngine(ctx, tx, ctx.now());
      return { didWork: s.changed > 0 || s.incidents > 0, detail: { changed: s.changed, incidents: s.incidents } };
    },
  };
}

export function warmupJob(intervalMs: number): Job {
  return {
    name: 'ip-warmup',
    intervalMs,
    async run(ctx, tx) {
      const r = await runWarmup(ctx, tx, ctx.now());
      return { didWork: r.changed > 0, detail: r };
    },
  };
}
