/** The background jobs a worker replica runs. */
import type { Config } from '../config/config.js';
import { resealDkimKeysJob } from '../app/jobs/reseal-dkim-keys.js';
import { rescoreTenantsJob } from '../app/jobs/rescore-tenants.js';
import type { Job } from './job-runner.js';

export function allJobs(config: Config): Job[] {
  return [resealDkimKeysJob(config.worker.rekeyBatchSize, 60_000), rescoreTenantsJob(config.worker.rescoreIntervalMs)];
}
