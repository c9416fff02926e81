/**
 * Mail through the platform for the suites with a real kumod: a tenant's sending domain made ready to
 * send (through the API, as an operator does), the real submission gateway, a client submitting over
 * a real SMTP connection (STARTTLS, AUTH), and DKIM checked as a receiver checks it, with the keys
 * the test's own DNS server (test/support/dns-server.ts) publishes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { dkimVerify } from 'mailauth';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { projectRoot } from '../../src/project-root.js';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import type { DnsServer } from './dns-server.js';
import { expectJson, testConfig, type Harness } from './harness.js';

export interface SendingDomain {
  id: string;
  dns_records: { type: string; name: string; value: string }[];
}

/**
 * A verified sending domain of the tenant, its DNS records (SPF, DKIM, DMARC) published in `dns`, and
 * the tenant placed in the standard tier for a day. Returns the domain as POST .../domains gave it.
 */
export async function readyToSend(h: Harness, tenantId: string, domain: string, dns: DnsServer, body: Record<string, unknown> = {}): Promise<SendingDomain> {
  const d = await expectJson<SendingDomain>(await h.request('POST', `/v1/tenants/${tenantId}/domains`, { body: { domain, ...body } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${tenantId}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  for (const r of d.dns_records) if (r.type === 'TXT') dns.zone.txt[r.name.toLowerCase()] = [r.value];
  await expectJson(await h.request('POST', `/v1/tenants/${tenantId}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'test' } }), 200);
  return d;
}

/** The submission gateway on a free port (587-style, STARTTLS with a self-signed certificate), in this process. */
export async function startTestGateway(h: Harness, env: Record<string, string> = {}): Promise<SubmissionGateway> {
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await promisify(execFile)('bash', [path.join(projectRoot(), 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const cfg = testConfig({
    DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway', CP_SMTP_TLS_CERT_FILE: `${tls}/cert.pem`, CP_SMTP_TLS_KEY_FILE: `${tls}/key.pem`,
    CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '-1', ...env,
  });
  return startSubmissionGateway(h.ctx, cfg.gateway);
}

/** One message submitted to the gateway on `port` as a tenant's client does: STARTTLS, AUTH, then the mail. */
export function submit(port: number, creds: { username: string; password: string }, mail: SendMailOptions): Promise<{ response: string; messageId: string }> {
  return nodemailer
    .createTransport({ host: '127.0.0.1', port, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password } })
    .sendMail(mail);
}

/** DKIM as a receiver checks it: an independent verifier (mailauth), the keys from `dns`. */
export const verifyDkimIn = (dns: DnsServer, raw: Buffer) =>
  dkimVerify(raw, { resolver: async (name, type) => (type === 'TXT' ? dns.resolveTxt(name) : Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))) });
