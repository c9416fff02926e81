import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDkimPrivateKey } from '../../src/app/sending-domains.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let tenant: Record<string, any>;
beforeAll(async () => {
  h = await startHarness({ CP_DMARC_RUA: 'dmarc@reports.example.net', CP_BOUNCE_MX_HOST: 'bounce.mta.example.net' });
  tenant = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'sender', display_name: 'Sender' } }), 201);
});
afterAll(async () => h?.close());

/** the p= value of a DKIM TXT record, back to a public key object */
function dkimPublicKey(record: string, algorithm: string) {
  const p = /(?:^|;\s*)p=([A-Za-z0-9+/=]+)/.exec(record)![1]!;
  const raw = Buffer.from(p, 'base64');
  if (algorithm === 'rsa-sha256') return createPublicKey({ key: raw, format: 'der', type: 'spki' });
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

describe('sending domains', () => {
  it.each(['rsa-sha256', 'ed25519-sha256'] as const)('%s: the published DKIM key matches the stored private key', async (algorithm) => {
    const domain = `${algorithm.slice(0, 3)}.Example.COM.`;
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain, dkim_algorithm: algorithm } }), 201);
    expect(d.domain).toBe(`${algorithm.slice(0, 3)}.example.com`);
    expect(d.dkim).toMatchObject({ selector: 'kcp1', algorithm });
    const txt = d.dns_records.find((r: { purpose: string }) => r.purpose === 'dkim');
    expect(txt.name).toBe(`kcp1._domainkey.${d.domain}`);
    expect(txt.value).toContain(algorithm === 'rsa-sha256' ? 'k=rsa' : 'k=ed25519');

    const pem = await openDkimPrivateKey(h.ctx, d.id);
    const message = Buffer.from('DKIM-Signature canonicalised header block');
    const digest = algorithm === 'rsa-sha256' ? 'sha256' : null;
    const signature = sign(digest, message, createPrivateKey(pem));
    expect(verify(digest, message, dkimPublicKey(txt.value, algorithm), signature)).toBe(true);
    // and a different key would not verify: the check has teeth
    expect(verify(digest, Buffer.from('tampered'), dkimPublicKey(txt.value, algorithm), signature)).toBe(false);
  });

  it('keeps the private key encrypted at rest and out of the API and the audit log', async () => {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'sealed.example' } }), 201);
    const pem = await openDkimPrivateKey(h.ctx, d.id);
    const body = pem.split('\n').slice(1, 3).join('');
    const dump = await sql<{ t: string }>`SELECT row_to_json(s)::text AS t FROM (SELECT id, encode(dkim_private_key_enc, 'escape') AS k FROM sending_domains) s`.execute(h.ctx.db);
    expect(dump.rows.map((r) => r.t).join()).not.toContain('PRIVATE KEY');
    expect(dump.rows.map((r) => r.t).join()).not.toContain(body.slice(0, 40));
    expect(JSON.stringify(d)).not.toContain(body.slice(0, 40));
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${d.id}`), 200);
    expect(audit.items[0].action).toBe('domain.create');
    expect(JSON.stringify(audit)).not.toContain(body.slice(0, 40));
  });

  it('returns SPF (with the fleet IPs), DKIM, DMARC and the return-path MX', async () => {
    const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'fsn1-a', region: 'fsn1', public_address: '198.51.100.1' } }), 201);
    await expectJson(await h.request('POST', '/v1/ips', { body: { address: '198.51.100.20', node_id: node.id, rdns_name: 'mta20.example.net' } }), 201);
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'records.example', dkim_selector: 's2026' } }), 201);
    const by = Object.fromEntries(d.dns_records.map((r: { purpose: string }) => [r.purpose, r]));
    expect(by.return_path_mx).toMatchObject({ type: 'MX', name: 'bounces.records.example', value: '10 bounce.mta.example.net.' });
    expect(by.spf).toMatchObject({ name: 'bounces.records.example', value: 'v=spf1 ip4:198.51.100.20 ~all' });
    expect(by.dkim.name).toBe('s2026._domainkey.records.example');
    expect(by.dmarc.value).toBe('v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc@reports.example.net');
  });

  it('a domain sends for one tenant only', async () => {
    const other = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'other', display_name: 'Other' } }), 201);
    await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'owned.example' } }), 201);
    expect((await expectJson(await h.request('POST', `/v1/tenants/${other.id}/domains`, { body: { domain: 'owned.example' } }), 409)).code).toBe('CONFLICT');
  });

  it('records verification; verified_at is set only when SPF, DKIM and DMARC all verify', async () => {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'verify.example' } }), 201);
    const url = `/v1/tenants/${tenant.id}/domains/${d.id}`;
    const partial = await expectJson(await h.request('PATCH', url, { body: { spf_state: 'verified', dkim_state: 'verified' } }), 200);
    expect(partial.verification).toMatchObject({ spf: 'verified', dkim: 'verified', dmarc: 'pending', verified_at: null });
    const full = await expectJson(await h.request('PATCH', url, { body: { dmarc_state: 'verified' } }), 200);
    expect(full.verification.verified_at).not.toBeNull();
    const failed = await expectJson(await h.request('PATCH', url, { body: { dkim_state: 'failed' } }), 200);
    expect(failed.verification.verified_at).toBeNull();
  });

  it('rotates the DKIM key under a new selector, resetting DKIM verification', async () => {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'rotate.example' } }), 201);
    const url = `/v1/tenants/${tenant.id}/domains/${d.id}`;
    await expectJson(await h.request('PATCH', url, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    expect((await expectJson(await h.request('POST', `${url}/dkim/rotate`, { body: { dkim_selector: 'kcp1' } }), 409)).code).toBe('CONFLICT');
    const r = await expectJson(await h.request('POST', `${url}/dkim/rotate`, { body: { dkim_selector: 'kcp2' } }), 200);
    expect(r.dkim.selector).toBe('kcp2');
    expect(r.dkim.public_key).not.toBe(d.dkim.public_key);
    expect(r.verification).toMatchObject({ dkim: 'pending', verified_at: null });
    const txt = r.dns_records.find((x: { purpose: string }) => x.purpose === 'dkim');
    const pem = await openDkimPrivateKey(h.ctx, d.id);
    const sig = sign('sha256', Buffer.from('m'), createPrivateKey(pem));
    expect(verify('sha256', Buffer.from('m'), dkimPublicKey(txt.value, 'rsa-sha256'), sig)).toBe(true);
  });

  it('deletes a domain with its mailboxes', async () => {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'gone.example' } }), 201);
    const m = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/mailboxes`, { body: { domain_id: d.id, local_part: 'x' } }), 201);
    expect(m.address).toBe('x@gone.example');
    await expectJson(await h.request('DELETE', `/v1/tenants/${tenant.id}/domains/${d.id}`), 204);
    await expectJson(await h.request('GET', `/v1/tenants/${tenant.id}/mailboxes/${m.id}`), 404);
  });
});
