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

describe('the API on the network', () => {
  const api = { ...valid, CP_ROLES: 'api' };
  it('serves plain HTTP on loopback only: any other address needs a certificate and key', () => {
    for (const host of ['127.0.0.1', '127.3.4.5', '::1', 'localhost']) expect(loadConfig({ ...api, CP_HTTP_HOST: host }).ok, host).toBe(true);
    for (const host of ['0.0.0.0', '10.0.0.5', '::', 'cp.example.net', '127.0.0.1.example.net']) {
      const r = loadConfig({ ...api, CP_HTTP_HOST: host });
      expect(r.ok, host).toBe(false);
      if (!r.ok) expect(r.error.join()).toContain(`CP_HTTP_HOST ${host} is not a loopback address`);
    }
    const tls = loadConfig({ ...api, CP_HTTP_HOST: '0.0.0.0', CP_HTTP_TLS_CERT_FILE: '/etc/hostname', CP_HTTP_TLS_KEY_FILE: '/etc/hostname' });
    expect(tls.ok).toBe(true);
    if (tls.ok) expect(tls.value.httpTls).toEqual({ certFile: '/etc/hostname', keyFile: '/etc/hostname', clientCaFile: null, reloadIntervalMs: 5000 });
    // a worker without the api role serves no API
    expect(loadConfig({ ...valid, CP_ROLES: 'worker', CP_HTTP_HOST: '0.0.0.0' }).ok).toBe(true);
  });

  it('TLS settings that do not go together are reported, every one', () => {
    const r = loadConfig({ ...api, CP_HTTP_TLS_CERT_FILE: '/nonexistent/cert.pem', CP_HTTP_TLS_CLIENT_CA_FILE: '/etc/hostname', CP_HTTP_NODE_CLIENT_CERT: 'sometimes' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.error.join('\n');
    expect(text).toContain('CP_HTTP_TLS_CERT_FILE and CP_HTTP_TLS_KEY_FILE go together');
    expect(text).toContain('CP_HTTP_TLS_CERT_FILE: cannot read /nonexistent/cert.pem');
    expect(text).toContain('CP_HTTP_NODE_CLIENT_CERT must be off, required or bound');
    const noCa = loadConfig({ ...api, CP_HTTP_NODE_CLIENT_CERT: 'bound' });
    expect(!noCa.ok && noCa.error.join()).toContain('CP_HTTP_NODE_CLIENT_CERT=bound needs CP_HTTP_TLS_CLIENT_CA_FILE');
    const caWithoutTls = loadConfig({ ...api, CP_HTTP_TLS_CLIENT_CA_FILE: '/etc/hostname' });
    expect(!caWithoutTls.ok && caWithoutTls.error.join()).toContain('CP_HTTP_TLS_CLIENT_CA_FILE needs HTTPS');
  });

  it('token-failure limits default to 20 in 15 minutes', () => {
    const r = loadConfig(api);
    expect(r.ok && r.value.apiAuthThrottle).toEqual({ failureLimit: 20, windowSeconds: 900 });
    expect(r.ok && r.value.nodeClientCert).toBe('off');
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
