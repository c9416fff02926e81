/** Worker jobs of the warming network: plan each UTC day once, and send what is due. */
import nodemailer from 'nodemailer';
import type { Config } from '../../config/config.js';
import type { Job } from '../../worker/job-runner.js';
import { WARMING_AGENT_USER, warmingAgentPassword } from '../../adapters/crypto/warming-tag.js';
import { planWarmingDay } from '../warming/plan-day.js';
import { sendDueWarming } from '../warming/send-due.js';

export function warmingPlannerJob(intervalMs: number): Job {
  return {
    name: 'warming-planner',
    intervalMs,
    async run(ctx, tx) {
      const r = await planWarmingDay(ctx, tx, ctx.now().toISOString().slice(0, 10));
      return { didWork: !r.already_planned && r.planned > 0, detail: { ...r } };
    },
  };
}

/** nodemailer submits warming mail to the gateway as the warming agent. */
export function warmingTransport(config: Config) {
  const u = new URL(config.warming.gatewayUrl);
  return nodemailer.createTransport({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port),
    secure: u.protocol === 'smtps:',
    requireTLS: true,
    tls: { rejectUnauthorized: config.warming.tlsVerify },
    auth: { user: WARMING_AGENT_USER, pass: warmingAgentPassword(config.pseudonymKey) },
    pool: true,
    maxConnections: 2,
  });
}

export function warmingSenderJob(config: Config, intervalMs: number): Job {
  let transport: ReturnType<typeof warmingTransport> | null = null;
  return {
    name: 'warming-sender',
    intervalMs,
    async run(ctx) {
      transport ??= warmingTransport(config);
      const r = await sendDueWarming(ctx, transport);
      return { didWork: r.due > 0, detail: { ...r } };
    },
  };
}
