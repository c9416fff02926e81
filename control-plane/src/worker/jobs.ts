/** The background jobs a worker replica runs. */
import type { Config } from '../config/config.js';
import { resealDkimKeysJob } from '../app/jobs/reseal-dkim-keys.js';
import { rescoreTenantsJob } from '../app/jobs/rescore-tenants.js';
import { placementJob, warmupJob } from '../app/jobs/pools-jobs.js';
import { warmingPlannerJob, warmingSenderJob } from '../app/jobs/warming-jobs.js';
import type { Job } from './job-runner.js';

export function allJobs(config: Config): Job[] {
  return [
    resealDkimKeysJob(config.worker.rekeyBatchSize, 60_000),
    rescoreTenantsJob(config.worker.rescoreIntervalMs),
    placementJob(config.worker.placementIntervalMs),
    // cheap when there is nothing to judge: each IP is judged once per UTC day
    warmupJob(600_000),
    // plans each UTC day once; later runs find the day planned and stop
    warmingPlannerJob(600_000),
    warmingSenderJob(config, 30_000),
  ];
}
