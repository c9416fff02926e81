/**
 * The control-plane binary run as a gateway of its own (CP_ROLES=gateway), as production scales it
 * out: it starts, takes mail, and answers /metrics on its own port since it has no API.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_MASTER_KEY, TEST_POLICY_SEED, type Harness } from '../support/harness.js';
import { freePortForTest, waitForPortForTest } from '../support/ports.js';
import { SmtpDialogue } from '../support/smtp-dialogue.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
let h: Harness;
let child: ReturnType<typeof spawn> | null = null;
let smtpPort = 0;
let metricsPort = 0;

beforeAll(async () => {
  h = await startHarness();
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  [smtpPort, metricsPort] = [await freePortForTest(), await freePortForTest()];
  child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'control-plane/src/bin/control-plane.ts')], {
    cwd: root,
    env: {
      // a replica that only serves: it holds no owner's credentials and finds its schema current
      ...process.env, DATABASE_URL: h.db.url, CP_MIGRATION_DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway', CP_MASTER_KEYS: TEST_MASTER_KEY,
      CP_PSEUDONYM_KEY: 'test-pseudonym-key-0123456789abcdef', CP_POLICY_SIGNING_KEY: TEST_POLICY_SEED, CP_LOG_LEVEL: 'warn',
      CP_SMTP_TLS_CERT_FILE: `${tls}/cert.pem`, CP_SMTP_TLS_KEY_FILE: `${tls}/key.pem`, CP_SMTP_SUBMISSION_PORT: String(smtpPort), CP_SMTP_TLS_PORT: '-1', CP_METRICS_PORT: String(metricsPort),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPortForTest(smtpPort, 60_000);
  await waitForPortForTest(metricsPort, 10_000);
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await h?.close();
});

describe('a gateway-only process', () => {
  it('answers SMTP and exports its metrics on CP_METRICS_PORT', async () => {
    const { d, greeting } = await SmtpDialogue.open(smtpPort);
    expect(greeting).toMatch(/^220 /);
    await d.send('EHLO client.example');
    expect(await d.send('MAIL FROM:<a@acme.example>')).toBe('530 5.7.0 authentication required');
    d.close();
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('# TYPE kcp_smtp_transactions_total counter');
    expect(text).toMatch(/^kcp_dependency_up\{dependency="postgresql"\} 1$/m);
    // the admin API is not served here
    await expect(fetch(`http://127.0.0.1:${metricsPort}/v1/me`)).resolves.toMatchObject({ status: 404 });
  });
});
