/** The trust window slides every day: rescore every tenant periodically, not only when events arrive. */
import type { Job } from '../../worker/job-runner.js';
import { rescoreAllTenants } from '../trust/rescore.js';

export function rescoreTenantsJob(intervalMs: number): Job {
  return {
    name: 'rescore-tenants',
    intervalMs,
    async run(ctx, tx) {
      const n = await rescoreAllTenants(tx, ctx.now());
      ctx.metrics.trustRecomputations.inc(n);
      return { didWork: n > 0, detail: { tenants: n } };
    },
  };
}
