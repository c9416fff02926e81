import { describe, expect, it } from 'vitest';
import { loadConfig, redactedConfig, SETTINGS } from './config.js';

const valid = {
  DATABASE_URL: 'postgres://u:dbsecret@127.0.0.1:5432/x',
  REDIS_URL: 'redis://:redissecret@127.0.0.1:6379/0',
  CP_MASTER_KEYS: `new:${Buffer.alloc(32, 1).toString('base64')},old:${Buffer.alloc(32, 2).toString('base64')}`,
  CP_PSEUDONYM_KEY: 'p'.repeat(40),
  CP_POLICY_SIGNING_KEY: Buffer.alloc(32, 5).toString('base64'),
};

describe('loadConfig', () => {
  it('accepts a minimal environment and fills documented defaults', () => {
    const r = loadConfig({ ...valid, CP_ROLES: 'api,worker' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.roles).toEqual(['api', 'worker']);
    expect(r.value.gateway.submissionPort).toBe(587);
    expect(r.value.gateway.tlsPort).toBe(465);
    expect(r.value.gateway.maxMessageBytes).toBe(25 * 1024 * 1024);
    expect(r.value.http).toEqual({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 10485760 });
    expect(r.value.masterKeys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(r.value.dns).toEqual({ spfInclude: null, bounceMxHost: null, dmarcRua: null, dmarcPolicy: 'none' });
  });

  it('runs every role by default, and then needs a readable TLS certificate and key', () => {
    const r = loadConfig({ ...valid, CP_SMTP_TLS_KEY_FILE: '/nonexistent/key.pem' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toContain('CP_SMTP_TLS_CERT_FILE is required with the gateway role');
    expect(r.error).toContain('CP_SMTP_TLS_KEY_FILE: cannot read /nonexistent/key.pem');
    const withFiles = loadConfig({ ...valid, CP_SMTP_TLS_CERT_FILE: '/etc/hostname', CP_SMTP_TLS_KEY_FILE: '/etc/hostname' });
    expect(withFiles.ok && withFiles.value.roles).toEqual(['api', 'worker', 'gateway']);
  });

  it('reports every problem at once', () => {
    const r = loadConfig({
      DATABASE_URL: 'mysql://nope',
      CP_ROLES: 'api,smtp-mars',
      CP_HTTP_PORT: '70000',
      CP_MASTER_KEYS: 'short:AAAA,bad entry',
      CP_PSEUDONYM_KEY: 'tiny',
      CP_LOG_LEVEL: 'loud',
      CP_DMARC_POLICY: 'maybe',
      CP_SPF_INCLUDE: 'Not A Host',
      CP_POLICY_SIGNING_KEY: 'c2hvcnQ=',
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.error.join('\n');
    for (const fragment of [
      'DATABASE_URL must use',
      'REDIS_URL is required',
      'unknown role "smtp-mars"',
      'CP_HTTP_PORT must be an integer',
      'entry 1 (short) must decode to 32 bytes',
      'entry 2 must look like id:base64',
      'CP_PSEUDONYM_KEY must be at least 32',
      'CP_LOG_LEVEL must be one of',
      'CP_DMARC_POLICY must be',
      'CP_SPF_INCLUDE must be a lower-case host name',
      'CP_POLICY_SIGNING_KEY must be base64 of 32 bytes',
    ]) {
      expect(text).toContain(fragment);
    }
    expect(r.error.length).toBeGreaterThanOrEqual(10);
  });

  it('refuses a master key id used twice', () => {
    const k = Buffer.alloc(32, 3).toString('base64');
    const r = loadConfig({ ...valid, CP_MASTER_KEYS: `a:${k},a:${k}` });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.join()).toContain('id a twice');
  });
});

describe('redactedConfig', () => {
  it('never shows a secret, but shows everything else', () => {
    const out = redactedConfig({ ...valid, CP_HTTP_PORT: '9000' });
    const text = JSON.stringify(out);
    for (const secret of ['dbsecret', 'redissecret', Buffer.alloc(32, 1).toString('base64'), 'p'.repeat(40)]) {
      expect(text).not.toContain(secret);
    }
    expect(out.CP_MASTER_KEYS).toBe('new:[redacted],old:[redacted]');
    expect(out.DATABASE_URL).toContain('127.0.0.1:5432');
    expect(out.CP_HTTP_PORT).toBe('9000');
    expect(Object.keys(out).sort()).toEqual(Object.keys(SETTINGS).sort());
  });
});
