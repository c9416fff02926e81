/**
 * The Hetzner adapter against a local fake of the API over real HTTP (test/support/fake-hetzner.ts):
 * paging, the catalog, servers and Floating IPs with their asynchronous actions, retries, the request
 * budget and 429s, a read-only token, failed actions, and an idempotent re-run after a crash part-way.
 * Delays are shrunk (tens of milliseconds) so the suite takes a few seconds; the budget test uses a
 * tiny bucket with the real shape of refill.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HetznerCloudProvider, type HetznerProviderOptions } from '../../src/adapters/hetzner/hetzner-cloud-provider.js';
import { ProjectBudget } from '../../src/adapters/hetzner/transport.js';
import { choosePlacement, floatingIpMonthlyCost, serverMonthlyCost } from '../../src/domain/provisioning/catalog.js';
import { INTENT_LABEL, MANAGED_BY_LABEL } from '../../src/domain/provisioning/idempotency.js';
import { ProviderError } from '../../src/domain/provisioning/provider-errors.js';
import { FakeHetzner } from '../support/fake-hetzner.js';

const FAST = {
  retry: { maxAttempts: 4, baseDelayMs: 10, multiplier: 2, maxDelayMs: 50 },
  poll: { initialDelayMs: 10, multiplier: 1.5, maxDelayMs: 50, timeoutMs: 5000, batchSize: 25 },
  perPage: 2,
};

function provider(fake: FakeHetzner, over: Partial<HetznerProviderOptions> = {}): HetznerCloudProvider {
  return new HetznerCloudProvider({ token: fake.token, project: 'test-project', baseUrl: fake.url, ...FAST, ...over });
}

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ProviderError);
    return e as ProviderError;
  }
  throw new Error('expected a rejection');
}

/** everything an error could leak through: message, stack, context, cause, its JSON */
const everything = (e: ProviderError) => [e.message, e.stack ?? '', JSON.stringify(e.context ?? {}), JSON.stringify(e.cause ?? null), JSON.stringify(e), String(e)].join('\n');

const spec = (key: string, over: Record<string, unknown> = {}) => ({
  name: `node-${key}`,
  serverType: 'cx22',
  location: 'fsn1',
  image: 'ubuntu-22.04',
  userData: `#cloud-config\nwrite_files:\n  - path: /etc/kcp/enrol\n    content: enrol-${key}\n`,
  labels: { role: 'kumomta-node', 'kcp.node': key },
  idempotencyKey: key,
  ...over,
});

describe('Hetzner Cloud adapter', () => {
  const fake = new FakeHetzner();
  beforeAll(() => fake.start());
  afterAll(() => fake.stop());

  it('pages through lists and reads the catalog and prices', async () => {
    const p = provider(fake);
    const types = await p.listServerTypes();
    expect(types.map((t) => t.name)).toEqual(['cx11', 'cx22', 'cx32', 'cax11', 'cpx21', 'ccx13']);
    // per_page 2: three pages, following meta.pagination.next_page
    expect(fake.callsTo('GET', '/server_types').map((c) => c.query.get('page'))).toEqual(['1', '2', '3']);
    const locations = await p.listLocations();
    expect(locations.map((l) => l.name)).toEqual(['fsn1', 'nbg1', 'hel1', 'ash']);
    expect(locations[3]!.networkZone).toBe('us-east');
    expect(types.find((t) => t.name === 'cx11')!.deprecated).toBe(true);

    const pricing = await p.getPricing();
    expect(serverMonthlyCost(pricing, 'cx22', 'fsn1')).toMatchObject({ currency: 'EUR', source: 'provider' });
    expect(serverMonthlyCost(pricing, 'cx22', 'fsn1').amount).toBeCloseTo(3.79 * 1.19, 6);
    expect(floatingIpMonthlyCost(pricing, 'ash').amount).toBeCloseTo(3 * 1.19, 6);
    expect(pricing.primaryIpv4['fsn1']!.netMonthly).toBeCloseTo(0.5, 6);
  });

  it('chooses type and location from the catalog, not from names', async () => {
    const p = provider(fake);
    const [types, locations] = [await p.listServerTypes(), await p.listLocations()];
    const small = choosePlacement(types, locations, { minCores: 2, minMemoryGb: 4, architecture: 'x86', locations: ['nbg1', 'fsn1'] });
    expect(small.ok && [small.value.serverType.name, small.value.location.name]).toEqual(['cx22', 'nbg1']);
    // the dedicated type is sold out in nbg1 and retired in ash: fsn1 it is
    const dedicated = choosePlacement(types, locations, { cpuType: 'dedicated', locations: ['nbg1', 'ash', 'fsn1'] });
    expect(dedicated.ok && [dedicated.value.serverType.name, dedicated.value.location.name]).toEqual(['ccx13', 'fsn1']);
    // the retired 1-core generation is never chosen, even where it is the only 1-core type
    const tiny = choosePlacement(types, locations, { minCores: 1, architecture: 'x86', locations: ['fsn1'] });
    expect(tiny.ok && tiny.value.serverType.name).toBe('cx22');
  });

  it('creates a server with user data and labels, waits for its actions in one batch per poll, deletes it', async () => {
    const p = provider(fake);
    const created = await p.createServer(spec('create-1'));
    expect(created.adopted).toBe(false);
    expect(created.actions.map((a) => [a.command, a.status])).toEqual([['create_server', 'running'], ['start_server', 'running']]);
    const body = JSON.parse(JSON.stringify(fake.servers.get(Number(created.server.id))));
    expect(body.user_data).toContain('enrol-create-1');
    expect(created.server.labels).toMatchObject({ role: 'kumomta-node', [MANAGED_BY_LABEL]: 'kumo-control-plane', [INTENT_LABEL]: 'create-1' });
    expect(fake.callsTo('POST', '/servers')).toHaveLength(1);

    const pollsBefore = fake.callsTo('GET', '/actions').length;
    const done = await p.waitForActions(created.actions);
    expect(done.map((a) => a.status)).toEqual(['success', 'success']);
    const polls = fake.callsTo('GET', '/actions').slice(pollsBefore);
    // two polls (the fake finishes actions after two), each asking for both actions at once
    expect(polls).toHaveLength(2);
    for (const c of polls) expect(c.query.getAll('id').sort()).toEqual(created.actions.map((a) => a.id).sort());
    expect((await p.getServer(created.server.id))!.status).toBe('running');

    const del = await p.deleteServer(created.server.id);
    await p.waitForActions([del!]);
    expect(await p.getServer(created.server.id)).toBeNull();
    expect(await p.deleteServer(created.server.id)).toBeNull();
  });

  it('buys a sending IP: create, assign, PTR, then retires it: PTR reset, unassign, delete', async () => {
    const p = provider(fake);
    const node = await p.createServer(spec('fip-node'));
    await p.waitForActions(node.actions);

    const { floatingIp, actions } = await p.createFloatingIp({ family: 'ipv4', homeLocation: 'fsn1', labels: { purpose: 'sending' }, idempotencyKey: 'ip-1', description: 'sending ip' });
    expect(actions).toEqual([]);
    expect(floatingIp.serverId).toBeNull();

    const assign = await p.assignFloatingIp(floatingIp.id, node.server.id);
    const ptr = await p.setReverseDns(floatingIp.id, floatingIp.ip, 'mta1.example.net');
    // both waited for together
    await p.waitForActions([assign, ptr]);
    const after = (await p.getFloatingIp(floatingIp.id))!;
    expect(after.serverId).toBe(node.server.id);
    expect(after.reverseDns).toEqual([{ ip: floatingIp.ip, ptr: 'mta1.example.net' }]);
    expect((await p.getServer(node.server.id))!.floatingIpIds).toEqual([floatingIp.id]);

    await p.waitForActions([await p.setReverseDns(floatingIp.id, floatingIp.ip, null)]);
    await p.waitForActions([await p.unassignFloatingIp(floatingIp.id)]);
    const released = (await p.getFloatingIp(floatingIp.id))!;
    expect([released.serverId, released.reverseDns]).toEqual([null, []]);
    expect(await p.deleteFloatingIp(floatingIp.id)).toBe(true);
    expect(await p.getFloatingIp(floatingIp.id)).toBeNull();
    expect(await p.deleteFloatingIp(floatingIp.id)).toBe(false);
  });

  it('polls many actions in batches: one request per batch per round', async () => {
    const p = provider(fake, { poll: { ...FAST.poll, batchSize: 2 } });
    const node = await p.createServer(spec('batch-node'));
    const ip = await p.createFloatingIp({ family: 'ipv4', homeLocation: 'fsn1', serverId: node.server.id, labels: {}, idempotencyKey: 'ip-batch' });
    expect(ip.actions.map((a) => a.command)).toEqual(['assign_floating_ip']);
    const before = fake.callsTo('GET', '/actions').length;
    await p.waitForActions([...node.actions, ...ip.actions]);
    const polls = fake.callsTo('GET', '/actions').slice(before);
    // 3 actions in batches of 2 → 2 requests per round, 2 rounds
    expect(polls.map((c) => c.query.getAll('id').length)).toEqual([2, 1, 2, 1]);
    expect((await p.getFloatingIp(ip.floatingIp.id))!.serverId).toBe(node.server.id);
  });

  it('retries locked and conflict, and a 5xx on a read, then succeeds', async () => {
    const p = provider(fake);
    const node = await p.createServer(spec('retry-node'));
    const ip = await p.createFloatingIp({ family: 'ipv4', homeLocation: 'fsn1', labels: {}, idempotencyKey: 'ip-retry' });
    const before = fake.callsTo('POST', /\/actions\/assign$/).length;
    fake.failNext({ method: 'POST', path: /\/actions\/assign$/ }, 'locked');
    fake.failNext({ method: 'POST', path: /\/actions\/assign$/ }, 'conflict');
    const assign = await p.assignFloatingIp(ip.floatingIp.id, node.server.id);
    expect(fake.callsTo('POST', /\/actions\/assign$/).slice(before).map((c) => c.status)).toEqual([423, 409, 201]);
    await p.waitForActions([...node.actions, assign]);

    fake.failNext({ method: 'GET', path: '/locations' }, 'server_error');
    expect(await p.listLocations()).toHaveLength(4);
  });

  it('does not retry what will fail again, and says why', async () => {
    const p = provider(fake);
    const e = await rejection(p.createServer(spec('bad', { location: 'mars1' })));
    expect([e.providerCode, e.apiCode, e.code, e.retryable]).toEqual(['PROVIDER_INVALID_INPUT', 'invalid_input', 'VALIDATION_FAILED', false]);
    expect(fake.callsTo('POST', '/servers').filter((c) => c.status === 400)).toHaveLength(1);
    fake.failNext({ method: 'POST', path: '/servers' }, 'resource_limit_exceeded');
    const limit = await rejection(p.createServer(spec('quota')));
    expect(limit.providerCode).toBe('PROVIDER_RESOURCE_LIMIT');
    expect(limit.message).toMatch(/raise the project's limit/);
  });

  it('surfaces a failed action with its own error', async () => {
    const p = provider(fake);
    const node = await p.createServer(spec('fail-node'));
    const ip = await p.createFloatingIp({ family: 'ipv4', homeLocation: 'fsn1', labels: {}, idempotencyKey: 'ip-fail' });
    fake.failNextAction('assign_floating_ip', { code: 'action_failed', message: 'floating ip could not be routed' });
    const assign = await p.assignFloatingIp(ip.floatingIp.id, node.server.id);
    const e = await rejection(p.waitForActions([...node.actions, assign]));
    expect(e.providerCode).toBe('PROVIDER_ACTION_FAILED');
    expect(e.action).toMatchObject({ id: assign.id, command: 'assign_floating_ip', status: 'error', error: { code: 'action_failed', message: 'floating ip could not be routed' } });
    expect(e.message).toContain('floating ip could not be routed');
    expect((await p.getFloatingIp(ip.floatingIp.id))!.serverId).toBeNull();
  });

  it('refuses writes with a read-only token with a clear typed error, and reads still work', async () => {
    const ro = provider(fake, { token: fake.readOnlyToken });
    expect(await ro.listLocations()).toHaveLength(4);
    const e = await rejection(ro.createServer(spec('ro')));
    expect([e.providerCode, e.code, e.apiCode, e.status, e.retryable]).toEqual(['PROVIDER_TOKEN_READ_ONLY', 'FORBIDDEN', 'forbidden', 403, false]);
    expect(e.message).toMatch(/read-only.*Read & Write/);
    // refused once, not retried
    expect(fake.calls.filter((c) => c.readOnly && c.method === 'POST')).toHaveLength(1);
    expect(everything(e)).not.toContain(fake.readOnlyToken);
  });

  it('never lets the token into errors, whatever went wrong', async () => {
    const wrong = 'hcloud-secret-token-that-must-not-leak-0000000000000000000000000000';
    const errors = [
      await rejection(provider(fake, { token: wrong }).listLocations()),
      await rejection(provider(fake, { token: fake.readOnlyToken }).deleteServer('1')),
      await rejection(provider(fake, { baseUrl: 'http://127.0.0.1:1/v1', retry: { ...FAST.retry, maxAttempts: 1 } }).listLocations()),
    ];
    expect(errors.map((e) => e.providerCode)).toEqual(['PROVIDER_UNAUTHENTICATED', 'PROVIDER_TOKEN_READ_ONLY', 'PROVIDER_NETWORK']);
    for (const e of errors) for (const t of [wrong, fake.token, fake.readOnlyToken]) expect(everything(e)).not.toContain(t);
    expect(JSON.stringify(provider(fake))).not.toContain(fake.token);
  });

  it('after a crash part-way, a re-run finds the server by its label instead of buying a second', async () => {
    // the provider creates the server, and the answer never arrives
    fake.dropResponseAfterCreate({ method: 'POST', path: '/servers' });
    const crashed = provider(fake, { retry: { ...FAST.retry, maxAttempts: 1 } });
    const e = await rejection(crashed.createServer(spec('crash-1')));
    expect(e.providerCode).toBe('PROVIDER_NETWORK');
    const mine = () => [...fake.servers.values()].filter((s) => s.labels[INTENT_LABEL] === 'crash-1');
    expect(mine()).toHaveLength(1);

    // the process restarts and runs the same intent again
    const postsBefore = fake.callsTo('POST', '/servers').length;
    const again = await provider(fake).createServer(spec('crash-1'));
    expect(again.adopted).toBe(true);
    expect(again.server.id).toBe(String(mine()[0]!.id));
    // the create the crashed run started is handed over, so the caller waits for the same thing
    expect(again.actions.map((a) => a.command).sort()).toEqual(['create_server', 'start_server']);
    await provider(fake).waitForActions(again.actions);
    expect(mine()).toHaveLength(1);
    // and it never sent a second create
    expect(fake.callsTo('POST', '/servers').length).toBe(postsBefore);
  });

  it('within one run, a create whose answer was lost is reconciled, not repeated', async () => {
    fake.dropResponseAfterCreate({ method: 'POST', path: '/floating_ips' });
    const posts = fake.callsTo('POST', '/floating_ips').length;
    const r = await provider(fake).createFloatingIp({ family: 'ipv4', homeLocation: 'nbg1', labels: {}, idempotencyKey: 'ip-dropped' });
    expect(r.adopted).toBe(true);
    expect(fake.callsTo('POST', '/floating_ips').length - posts).toBe(1);
    expect([...fake.floatingIps.values()].filter((f) => f.labels[INTENT_LABEL] === 'ip-dropped')).toHaveLength(1);
  });
});

describe('Hetzner request budget', () => {
  it('waits for the refill instead of overrunning the budget', async () => {
    const fake = new FakeHetzner({ rateLimit: { limit: 3, refillPerSec: 4 } });
    await fake.start();
    try {
      const budget = new ProjectBudget({ limit: 3, refillPerSec: 4, nowMs: Date.now() });
      const p = provider(fake, { budget, perPage: 50 });
      const started = Date.now();
      // eight requests, some concurrent, on a bucket of three refilled at four per second
      await Promise.all([p.listLocations(), p.listLocations(), p.listLocations()]);
      for (let i = 0; i < 5; i++) await p.listLocations();
      const elapsed = Date.now() - started;
      expect(fake.calls.map((c) => c.status).filter((s) => s === 429)).toEqual([]);
      expect(fake.calls).toHaveLength(8);
      // five beyond the bucket at 250 ms each
      expect(elapsed).toBeGreaterThanOrEqual(1150);
      expect(elapsed).toBeLessThan(4000);
    } finally {
      await fake.stop();
    }
  });

  it('honours a 429 (another process spent the project’s budget) and then succeeds', async () => {
    const fake = new FakeHetzner({ rateLimit: { limit: 2, refillPerSec: 2 } });
    await fake.start();
    try {
      const waits: number[] = [];
      // another process (its own budget, same project) spent the bucket; this one does not know
      fake.drainBudget();
      const started = Date.now();
      const events: string[] = [];
      const q = provider(fake, {
        perPage: 50,
        budget: new ProjectBudget({ limit: 2, refillPerSec: 2, nowMs: Date.now() }),
        onEvent: (e) => {
          events.push(e.kind);
          if (e.kind === 'budget_wait') waits.push(e.waitMs);
        },
      });
      expect(await q.listLocations()).toHaveLength(4);
      expect(fake.calls.map((c) => c.status)).toEqual([429, 200]);
      // the retry itself adds no back-off: the budget, now empty, paces it
      expect(events).toEqual(['rate_limited', 'retry', 'budget_wait']);
      // one token's worth (500 ms at 2/s), derived from RateLimit-Reset
      expect(waits[0]).toBeGreaterThanOrEqual(400);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    } finally {
      await fake.stop();
    }
  });
});
