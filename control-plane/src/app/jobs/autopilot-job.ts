/** The policy autopilot as a worker job: frequent and cheap when nothing changed. */
import type { Job } from '../../worker/job-runner.js';
import { autopilotTick } from '../policy/autopilot.js';
import { FleetRenderCache } from '../policy/fleet-render.js';

export function autopilotJob(intervalMs: number): Job {
  // one per process: a replica that takes the job over renders once, then reuses while nothing changes
  const renders = new FleetRenderCache();
  return {
    name: 'policy-autopilot',
    intervalMs,
    async run(ctx, tx) {
      const r = await autopilotTick(ctx, tx, renders);
      return { didWork: !(r.step === 'idle' || r.step === 'wait') || r.bootstrapped !== undefined, detail: { ...r } };
    },
  };
}
