/**
 * The end of the provisioning lifecycle through the API, against the local Hetzner fake over real HTTP
 * (test/support/fake-hetzner.ts) and a real PostgreSQL: retiring a bought node (its retired IPs
 * released, its server deleted, its rows removed, audited), refused while an IP is not retired,
 * finished by a re-run after a crash part-way; DELETE refused for a bought node; pending provisioning
 * intents listed (never their sealed tokens) and cancelled (what the provider holds under the key is
 * deleted, and the next run starts afresh); a read-only token refused with PROVIDER_TOKEN_READ_ONLY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerTokenAad } from '../../src/app/provisioning/provider-projects.js';
import { FakeHetzner, quickHetznerClient } from '../support/fake-hetzner.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

const fake = new FakeHetzner();
let h: Harness;
/** attempts per request of the provider client: 1 makes a dropped answer a failure (a crash part-way) */
let attempts = 4;

beforeAll(async () => {
  await fake.start();
  h = await startHarness(
    { CP_HETZNER_API_URL: fake.url, CP_NODE_CONTROL_PLANE_URL: 'https://cp.example.net:8443', CP_IP_RDNS_ZONE: 'mta.example.net', CP_NODE_LOCATIONS: 'fsn1,nbg1' },
    {
      overrides: {
        cloudProvider: (p) => quickHetznerClient(p, attempts),
        // nothing resolves: bought IPs stay unverified, which these tests do not need
        resolveAddresses: async () => [],
      },
    },
  );
  project = (await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'main', token: fake.token } }), 201)).id;
});
afterAll(async () => {
  await h?.close();
  await fake.stop();
});

let project: string;

async function provision(name: string, projectId = project): Promise<{ node: any; provider_server_id: string; token: string }> {
  return expectJson(await h.request('POST', '/v1/nodes/provision', { body: { project_id: projectId, name } }), 201);
}

/** the node's pull, saying how many messages its kumod holds, as cp_pull does */
async function reportQueue(n: { node: { id: string }; token: string }, count: number): Promise<void> {
  const r = await h.request('GET', `/v1/nodes/${n.node.id}/policy`, { token: n.token, headers: { 'X-KCP-Running-SHA256': 'none', 'X-KCP-Running-Copy': 'none', 'X-KCP-Queued-Messages': String(count) } });
  // nothing is published in this file: the pull answers 404, and the report is kept all the same
  expect(r.status).toBe(404);
}

/** one call with the client trying once: the next matching request lands, its answer is lost */
async function crashedCall(match: { method: string; path: string | RegExp }, method: string, path: string, body?: unknown): Promise<Response> {
  attempts = 1;
  fake.dropResponseAfterCreate(match);
  try {
    return await h.request(method, path, body === undefined ? {} : { body });
  } finally {
    attempts = 4;
  }
}

async function auditActions(targetId: string): Promise<string[]> {
  const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${targetId}`), 200);
  return audit.items.map((e: any) => e.action);
}

const nodeRow = (id: string) => h.ctx.db.selectFrom('nodes').select(['id', 'provider_server_id']).where('id', '=', id).executeTakeFirst();

describe('retiring a bought node from the provider', () => {
  it('refuses while an IP is not retired, then releases the retired IP, deletes the server and removes the rows', async () => {
    const n = await provision('node-r');
    const serverId = Number(n.provider_server_id);
    const bought = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/ips/provision`, { body: {} }), 201);
    const fipId = Number(bought.provider_floating_ip_id);
    await expectJson(await h.request('PATCH', `/v1/ips/${bought.ip.id}`, { body: { state: 'active' } }), 200);

    // an active IP: nothing is touched at the provider, the problem names the IP
    const deletesBefore = fake.callsTo('DELETE', `/servers/${serverId}`).length;
    const refused = await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(refused.status).toBe(409);
    const problem = (await refused.json()) as any;
    expect(problem.code).toBe('CONFLICT');
    expect(problem.detail).toContain(`${bought.ip.address} (active)`);
    expect(problem.context.ips).toEqual([{ id: bought.ip.id, address: bought.ip.address, state: 'active' }]);
    expect(fake.callsTo('DELETE', `/servers/${serverId}`).length).toBe(deletesBefore);
    expect(fake.servers.has(serverId)).toBe(true);
    expect(fake.floatingIps.has(fipId)).toBe(true);

    // retired by state only: the Floating IP is still bought, and the node retirement releases it
    await expectJson(await h.request('PATCH', `/v1/ips/${bought.ip.id}`, { body: { state: 'retired', reason: 'draining node-r' } }), 200);
    // its kumod still holds two messages: the server (and its spool) stays
    await reportQueue(n, 2);
    expect((await expectJson(await h.request('GET', `/v1/nodes/${n.node.id}`), 200)).queued_messages).toMatchObject({ count: 2 });
    const holding = await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(holding.status).toBe(409);
    expect((await holding.json()) as any).toMatchObject({ context: { reason: 'holds_messages', queued_messages: 2 }, detail: expect.stringContaining('still holds 2 messages') });
    expect(fake.servers.has(serverId)).toBe(true);
    expect(fake.floatingIps.has(fipId)).toBe(true);
    await reportQueue(n, 0);
    const r = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`), 200);
    expect(r).toEqual({
      node_id: n.node.id,
      name: 'node-r',
      provider_server_id: n.provider_server_id,
      server_deleted: true,
      released_ips: [{ ip_id: bought.ip.id, address: bought.ip.address, provider_floating_ip_id: bought.provider_floating_ip_id, released: true }],
      removed_ip_ids: [bought.ip.id],
    });
    expect(fake.floatingIps.has(fipId)).toBe(false);
    expect(fake.servers.has(serverId)).toBe(false);
    // the PTR was reset (set once, reset once) and the IP unassigned before it was deleted
    expect(fake.callsTo('POST', `/floating_ips/${fipId}/actions/change_dns_ptr`).length).toBe(2);
    const order = fake.calls.filter((c) => c.path === `/floating_ips/${fipId}/actions/unassign` || (c.method === 'DELETE' && (c.path === `/floating_ips/${fipId}` || c.path === `/servers/${serverId}`))).map((c) => `${c.method} ${c.path}`);
    expect(order).toEqual([`POST /floating_ips/${fipId}/actions/unassign`, `DELETE /floating_ips/${fipId}`, `DELETE /servers/${serverId}`]);

    expect(await nodeRow(n.node.id)).toBeUndefined();
    expect(await h.ctx.db.selectFrom('ip_addresses').select('id').where('id', '=', bought.ip.id).executeTakeFirst()).toBeUndefined();
    expect((await h.request('GET', `/v1/nodes/${n.node.id}`)).status).toBe(404);
    expect(await auditActions(n.node.id)).toContain('node.retire_from_provider');
    const ipAudit = await auditActions(bought.ip.id);
    expect(ipAudit).toEqual(expect.arrayContaining(['ip.delete', 'ip.provider_release', 'ip.state.retired', 'ip.provision']));
    // the server intent stays as history; a node of the same name can be bought again
    expect((await h.ctx.db.selectFrom('provisioning_intents').select('status').where('node_name', '=', 'node-r').execute()).map((i) => i.status)).toEqual(['done']);
    const again = await provision('node-r');
    expect(again.node.id).not.toBe(n.node.id);
    expect(fake.servers.has(Number(again.provider_server_id))).toBe(true);
  });

  it('finishes by a re-run after a crash part-way through the server delete', async () => {
    const n = await provision('node-crash');
    const serverId = Number(n.provider_server_id);
    await reportQueue(n, 0);
    const crashed = await crashedCall({ method: 'DELETE', path: `/servers/${serverId}` }, 'POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(crashed.status).toBe(503);
    expect(((await crashed.json()) as any).context.provider_code).toBe('PROVIDER_NETWORK');
    // the delete landed at the provider, the row stayed: it must not be forgotten by DELETE either
    expect(fake.servers.get(serverId)?.status).toBe('deleting');
    expect(await nodeRow(n.node.id)).toBeDefined();
    expect((await h.request('DELETE', `/v1/nodes/${n.node.id}`)).status).toBe(409);

    const r = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`), 200);
    expect(r).toMatchObject({ node_id: n.node.id, server_deleted: true, released_ips: [], removed_ip_ids: [] });
    expect(fake.servers.has(serverId)).toBe(false);
    expect(await nodeRow(n.node.id)).toBeUndefined();
  });

  it('counts a server already gone at the provider as deleted (a re-run after the delete finished)', async () => {
    const n = await provision('node-gone');
    const serverId = Number(n.provider_server_id);
    await reportQueue(n, 0);
    // the crashed run's delete completed; only the row removal is left
    fake.servers.delete(serverId);
    const r = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`), 200);
    expect(r).toMatchObject({ node_id: n.node.id, server_deleted: false });
    expect(fake.callsTo('DELETE', `/servers/${serverId}`).map((c) => c.status)).toEqual([404]);
    expect(await nodeRow(n.node.id)).toBeUndefined();
    expect(await auditActions(n.node.id)).toContain('node.retire_from_provider');
  });

  it('releases a Floating IP a crashed purchase left without an IP row', async () => {
    const n = await provision('node-orphan');
    await reportQueue(n, 0);
    const before = new Set(fake.floatingIps.keys());
    const crashed = await crashedCall({ method: 'POST', path: '/floating_ips' }, 'POST', `/v1/nodes/${n.node.id}/ips/provision`, {});
    expect(crashed.status).toBe(503);
    const orphan = [...fake.floatingIps.values()].find((f) => !before.has(f.id))!;
    expect(orphan.labels['kcp.node']).toBe(n.node.id);
    expect(await h.ctx.db.selectFrom('ip_addresses').select('id').where('node_id', '=', n.node.id).execute()).toEqual([]);

    const r = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`), 200);
    expect(r.released_ips).toEqual([{ ip_id: null, address: orphan.ip, provider_floating_ip_id: String(orphan.id), released: true }]);
    expect(fake.floatingIps.has(orphan.id)).toBe(false);
    expect(await nodeRow(n.node.id)).toBeUndefined();
  });

  it('keeps the server of a node that has not said, or not lately, what it holds; force deletes it anyway, audited', async () => {
    const n = await provision('node-silent');
    const serverId = Number(n.provider_server_id);
    const silent = await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(silent.status).toBe(409);
    expect(((await silent.json()) as any).context).toEqual({ reason: 'not_reported' });
    await reportQueue(n, 0);
    await h.ctx.db.updateTable('nodes').set({ queued_messages_at: new Date(Date.now() - 10 * 60_000) }).where('id', '=', n.node.id).execute();
    const stale = await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(stale.status).toBe(409);
    expect((await stale.json()) as any).toMatchObject({ context: { reason: 'report_stale' }, detail: expect.stringMatching(/is 60\d s old: it is not pulling/) });
    expect(fake.servers.has(serverId)).toBe(true);
    expect((await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`, { body: { force: 'yes' } })).status).toBe(400);
    const forced = await expectJson(await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`, { body: { force: true } }), 200);
    expect(forced).toMatchObject({ server_deleted: true });
    expect(fake.servers.has(serverId)).toBe(false);
    const audit = (await expectJson(await h.request('GET', `/v1/audit-log?target_id=${n.node.id}`), 200)).items.find((e: any) => e.action === 'node.retire_from_provider');
    expect(audit.details).toMatchObject({ forced: true, queued_messages: { count: 0 } });
  });

  it('refuses DELETE of a bought node, pointing at retire-from-provider; a hand-registered node goes as before', async () => {
    const n = await provision('node-keep');
    const res = await h.request('DELETE', `/v1/nodes/${n.node.id}`);
    expect(res.status).toBe(409);
    const problem = (await res.json()) as any;
    expect(problem.context).toEqual({ provider_server_id: n.provider_server_id, retire: `/v1/nodes/${n.node.id}/retire-from-provider` });
    expect(problem.detail).toContain('retire-from-provider');
    expect(await nodeRow(n.node.id)).toBeDefined();
    expect(fake.servers.has(Number(n.provider_server_id))).toBe(true);

    const manual = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'by-hand', region: 'fsn1', public_address: '192.0.2.50' } }), 201);
    expect((await h.request('DELETE', `/v1/nodes/${manual.id}`)).status).toBe(204);
    expect(await nodeRow(manual.id)).toBeUndefined();
    // and retire-from-provider is not for it
    const other = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'by-hand-2', region: 'fsn1', public_address: '192.0.2.51' } }), 201);
    expect((await h.request('POST', `/v1/nodes/${other.id}/retire-from-provider`)).status).toBe(412);
  });
});

describe('provisioning intents', () => {
  const ids: Record<string, any> = {};

  it('cancels a pending intent whose server was created: the server is deleted, the next run starts afresh', async () => {
    const before = new Set(fake.servers.keys());
    const crashed = await crashedCall({ method: 'POST', path: '/servers' }, 'POST', '/v1/nodes/provision', { project_id: project, name: 'node-lost' });
    expect(crashed.status).toBe(503);
    const lost = [...fake.servers.values()].find((s) => !before.has(s.id))!;
    const lostToken = /node_token = '([^']+)'/.exec(lost.user_data)![1]!;

    const pending = await expectJson(await h.request('GET', '/v1/provisioning-intents?status=pending'), 200);
    const intent = pending.items.find((i: any) => i.node_name === 'node-lost');
    expect(intent).toMatchObject({ kind: 'server', project_id: project, project_name: 'main', status: 'pending', idempotency_key: lost.labels['kcp.intent'], spec: { server_type: 'cx22', location: 'fsn1' }, resource_id: null });
    expect(intent.node_id).toBe(intent.spec.node_id);
    // the sealed node token never leaves the database, neither as a field nor as a value
    expect(Object.keys(intent).sort()).toEqual(['created_at', 'id', 'idempotency_key', 'kind', 'node_id', 'node_name', 'project_id', 'project_name', 'resource_id', 'spec', 'status', 'updated_at']);
    expect(JSON.stringify(pending)).not.toContain(lostToken);
    expect(JSON.stringify(pending)).not.toContain('node_token');

    const c = await expectJson(await h.request('POST', `/v1/provisioning-intents/${intent.id}/cancel`), 200);
    expect(c).toMatchObject({ intent: { id: intent.id, status: 'cancelled' }, deleted_servers: [String(lost.id)], released_floating_ips: [] });
    expect(fake.servers.has(lost.id)).toBe(false);
    expect(fake.callsTo('DELETE', `/servers/${lost.id}`).map((x) => x.status)).toEqual([200]);
    const row = await h.ctx.db.selectFrom('provisioning_intents').select(['status', 'node_token_enc', 'node_token_key_id']).where('id', '=', intent.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'cancelled', node_token_enc: null, node_token_key_id: null });
    // marked first, swept after
    expect(await auditActions(intent.id)).toEqual(['provisioning_intent.swept', 'provisioning_intent.cancel']);

    // a new run does not adopt (there is nothing to adopt) and does not reuse the key or the token
    const again = await provision('node-lost');
    expect(again).toMatchObject({ adopted: false });
    const server = fake.servers.get(Number(again.provider_server_id))!;
    expect(server.labels['kcp.intent']).not.toBe(intent.idempotency_key);
    expect(again.token).not.toBe(lostToken);
    expect(again.node.id).not.toBe(intent.node_id);
    ids.cancelled = intent.id;
    ids.done = (await h.ctx.db.selectFrom('provisioning_intents').select('id').where('node_name', '=', 'node-lost').where('status', '=', 'done').executeTakeFirstOrThrow()).id;
  });

  it('refuses to cancel a done intent, and sweeps a cancelled one again', async () => {
    const done = await h.request('POST', `/v1/provisioning-intents/${ids.done}/cancel`);
    expect(done.status).toBe(409);
    expect(((await done.json()) as any).context).toEqual({ status: 'done' });
    const again = await expectJson(await h.request('POST', `/v1/provisioning-intents/${ids.cancelled}/cancel`), 200);
    expect(again).toMatchObject({ intent: { status: 'cancelled' }, deleted_servers: [], released_floating_ips: [] });
    expect((await auditActions(ids.cancelled)).slice(0, 2)).toEqual(['provisioning_intent.swept', 'provisioning_intent.sweep']);
    expect((await h.request('POST', '/v1/provisioning-intents/00000000-0000-4000-8000-000000000000/cancel')).status).toBe(404);
    // the done intent's node is untouched
    const node = await h.ctx.db.selectFrom('nodes').select('provider_server_id').where('name', '=', 'node-lost').executeTakeFirstOrThrow();
    expect(fake.servers.has(Number(node.provider_server_id))).toBe(true);
  });

  it('a provision run that loses the race with a cancel records nothing and gives back the server it bought', async () => {
    const before = new Set(fake.servers.keys());
    let cancelled: Response | undefined;
    // the cancel lands while the run is about to buy: after the run stored its intent, before the server exists
    fake.pauseBefore({ method: 'POST', path: '/servers' }, async () => {
      const intent = await h.ctx.db.selectFrom('provisioning_intents').select('id').where('node_name', '=', 'node-raced').where('status', '=', 'pending').executeTakeFirstOrThrow();
      cancelled = await h.request('POST', `/v1/provisioning-intents/${intent.id}/cancel`);
    });
    const run = await h.request('POST', '/v1/nodes/provision', { body: { project_id: project, name: 'node-raced' } });
    expect(cancelled!.status).toBe(200);
    expect(run.status).toBe(409);
    expect(((await run.json()) as any).detail).toMatch(/was cancelled .* while it ran; the server it had bought was deleted/);
    // bought after the sweep, and deleted by the run itself: nothing is left billed
    const bought = [...fake.servers.values()].filter((x) => !before.has(x.id));
    expect(bought).toEqual([]);
    expect(fake.callsTo('DELETE', /^\/servers\/\d+$/).length).toBeGreaterThan(0);
    expect(await h.ctx.db.selectFrom('nodes').select('id').where('name', '=', 'node-raced').executeTakeFirst()).toBeUndefined();
  });

  it('an IP purchase that loses the race with a cancel records nothing and releases the IP', async () => {
    const n = await provision('node-ip-raced');
    const before = new Set(fake.floatingIps.keys());
    let cancelled: Response | undefined;
    fake.pauseBefore({ method: 'POST', path: '/floating_ips' }, async () => {
      const intent = await h.ctx.db.selectFrom('provisioning_intents').select('id').where('node_id', '=', n.node.id).where('status', '=', 'pending').executeTakeFirstOrThrow();
      cancelled = await h.request('POST', `/v1/provisioning-intents/${intent.id}/cancel`);
    });
    const run = await h.request('POST', `/v1/nodes/${n.node.id}/ips/provision`, { body: {} });
    expect(cancelled!.status).toBe(200);
    expect(run.status).toBe(409);
    expect(((await run.json()) as any).detail).toMatch(/the Floating IP it had bought was released/);
    expect([...fake.floatingIps.keys()].filter((k) => !before.has(k))).toEqual([]);
    expect((await expectJson(await h.request('GET', `/v1/ips?node_id=${n.node.id}`), 200)).items).toEqual([]);
  });

  it('lists intents newest first, by status, a page at a time; admin only', async () => {
    const all = await expectJson(await h.request('GET', '/v1/provisioning-intents?limit=200'), 200);
    const created = all.items.map((i: any) => Date.parse(i.created_at));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(all.items.length).toBeGreaterThan(3);
    // no pending one left: the cancelled one is cancelled, the orphaned IP's went with its node
    expect(new Set(all.items.map((i: any) => i.status))).toEqual(new Set(['done', 'cancelled']));
    const cancelled = await expectJson(await h.request('GET', '/v1/provisioning-intents?status=cancelled'), 200);
    // the one cancelled above and the two the races cancelled, newest first
    expect(cancelled.items.map((i: any) => i.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(cancelled.items.map((i: any) => i.id).at(-1)).toBe(ids.cancelled);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const p: any = await expectJson(await h.request('GET', `/v1/provisioning-intents?limit=2${cursor ? `&cursor=${cursor}` : ''}`), 200);
      expect(p.items.length).toBeLessThanOrEqual(2);
      seen.push(...p.items.map((i: any) => i.id));
      cursor = p.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.items.map((i: any) => i.id));

    expect((await h.request('GET', '/v1/provisioning-intents?status=open')).status).toBe(400);
    expect((await h.request('GET', '/v1/provisioning-intents', { token: await h.tokenWith(['write']) })).status).toBe(403);
    expect((await h.request('POST', `/v1/provisioning-intents/${ids.done}/cancel`, { token: await h.tokenWith(['write']) })).status).toBe(403);
  });
});

describe('a read-only token', () => {
  it('is refused with PROVIDER_TOKEN_READ_ONLY by retire-from-provider and cancel, and nothing is removed at the provider', async () => {
    const second = await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'second', token: fake.token } }), 201);
    const n = await provision('node-ro', second.id);
    const before = new Set(fake.servers.keys());
    expect((await crashedCall({ method: 'POST', path: '/servers' }, 'POST', '/v1/nodes/provision', { project_id: second.id, name: 'node-ro-lost' })).status).toBe(503);
    const lost = [...fake.servers.values()].find((s) => !before.has(s.id))!;
    const intent = await h.ctx.db.selectFrom('provisioning_intents').select('id').where('node_name', '=', 'node-ro-lost').executeTakeFirstOrThrow();

    // the operator swapped the project's token for a Read-only one
    const sealed = h.ctx.secretBox.seal(Buffer.from(fake.readOnlyToken, 'utf8'), providerTokenAad(second.id));
    await h.ctx.db.updateTable('provider_projects').set({ token_enc: sealed.box, token_key_id: sealed.keyId }).where('id', '=', second.id).execute();

    await reportQueue(n, 0);
    const retire = await h.request('POST', `/v1/nodes/${n.node.id}/retire-from-provider`);
    expect(retire.status).toBe(403);
    const body = (await retire.json()) as any;
    expect(body.context.provider_code).toBe('PROVIDER_TOKEN_READ_ONLY');
    expect(JSON.stringify(body)).not.toContain(fake.readOnlyToken);
    expect(fake.servers.has(Number(n.provider_server_id))).toBe(true);
    expect(await nodeRow(n.node.id)).toBeDefined();
    expect((await expectJson(await h.request('GET', `/v1/provider-projects/${second.id}`), 200)).token_read_only).toBe(true);
    expect(await auditActions(second.id)).toContain('provider_project.token_read_only');

    const cancel = await h.request('POST', `/v1/provisioning-intents/${intent.id}/cancel`);
    expect(cancel.status).toBe(403);
    expect(((await cancel.json()) as any).context.provider_code).toBe('PROVIDER_TOKEN_READ_ONLY');
    expect(fake.servers.has(lost.id)).toBe(true);
    // the intent is given up at once (no run may record it now); its server waits for a sweep the
    // provider allows: with a Read & Write token again, the same cancel finishes it
    expect((await h.ctx.db.selectFrom('provisioning_intents').select('status').where('id', '=', intent.id).executeTakeFirstOrThrow()).status).toBe('cancelled');
    expect(h.logText()).not.toContain(fake.readOnlyToken);
    const rw = h.ctx.secretBox.seal(Buffer.from(fake.token, 'utf8'), providerTokenAad(second.id));
    await h.ctx.db.updateTable('provider_projects').set({ token_enc: rw.box, token_key_id: rw.keyId }).where('id', '=', second.id).execute();
    expect(await expectJson(await h.request('POST', `/v1/provisioning-intents/${intent.id}/cancel`), 200)).toMatchObject({ deleted_servers: [String(lost.id)] });
    expect(fake.servers.has(lost.id)).toBe(false);
  });
});
