/** The policy autopilot as a worker job: frequent and cheap when nothing changed. */
import type { Job } from '../../worker/job-runner.js';
import { autopilotTick } from '../policy/autopilot.js';

export function autopilotJob(intervalMs: number): Job {
  return {
    name: 'policy-autopilot',
    intervalMs,
    async run(ctx, tx) {
      const r = await autopilotTick(ctx, tx);
      return { didWork: !(r.step === 'idle' || r.step === 'wait') || r.bootstrapped !== undefined, detail: { ...r } };
    },
  };
}
