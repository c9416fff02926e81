/**
 * A local stand-in for the subset of the Hetzner Cloud API the control plane uses, over real HTTP
 * (node:http on 127.0.0.1, a free port), so the adapter is tested through undici, headers and all.
 *
 * It keeps the real shapes: `{"error":{"code","message","details"}}` errors with the real codes and
 * statuses, `meta.pagination` (a small default `per_page`, so every list pages), asynchronous actions
 * (`running` until polled N times, then `success` or `error`), `RateLimit-Limit/Remaining/Reset` on
 * every answer from a per-project token bucket, a read-only token refused on writes with `forbidden`.
 *
 * Fault injection, for the failures part-way through that real clouds produce:
 * - `failNext(match, code)`: answer the next matching call with an API error;
 * - `failNextAction(command, error)`: the next action of that command ends in `error`;
 * - `dropResponseAfterCreate(match)`: carry out the next matching call, then cut the connection
 *   before answering (the client cannot know it landed: a crash part-way).
 * `calls` records every request (method, path, query, status) for assertions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HetznerCloudProvider } from '../../src/adapters/hetzner/hetzner-cloud-provider.js';
import type { ProviderProjectConnection } from '../../src/context.js';

export interface FakeHetznerOptions {
  /** the Read & Write token */
  token?: string;
  /** a Read-only token of the same project */
  readOnlyToken?: string;
  /** default page size when the client sends none (the real default is 25) */
  defaultPerPage?: number;
  /** the project's bucket size and refill (the real API: 3,600, 1/s) */
  rateLimit?: { limit: number; refillPerSec: number };
  /** polls of an action before it finishes */
  actionPolls?: number;
}

export interface RecordedCall {
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
  readOnly: boolean;
}

interface Action {
  id: number;
  command: string;
  status: 'running' | 'success' | 'error';
  progress: number;
  started: string;
  finished: string | null;
  error: { code: string; message: string } | null;
  resources: { id: number; type: string }[];
  pollsLeft: number;
  failWith: { code: string; message: string } | null;
  onSuccess: () => void;
}

interface FakeServer {
  id: number;
  name: string;
  status: string;
  created: string;
  server_type: Record<string, unknown>;
  location: Record<string, unknown>;
  image: { name: string };
  labels: Record<string, string>;
  user_data: string;
  public_net: { ipv4: { id: number; ip: string; blocked: boolean; dns_ptr: string }; ipv6: { id: number; ip: string; blocked: boolean; dns_ptr: [] }; floating_ips: number[]; firewalls: [] };
  protection: { delete: boolean; rebuild: boolean };
}

interface FakeFloatingIp {
  id: number;
  name: string;
  description: string | null;
  created: string;
  ip: string;
  type: 'ipv4' | 'ipv6';
  server: number | null;
  dns_ptr: { ip: string; dns_ptr: string }[];
  home_location: Record<string, unknown>;
  blocked: boolean;
  protection: { delete: boolean };
  labels: Record<string, string>;
}

type Match = { method?: string; path?: string | RegExp };

const LOCATIONS = [
  { id: 1, name: 'fsn1', description: 'Falkenstein DC Park 1', country: 'DE', city: 'Falkenstein', latitude: 50.47612, longitude: 12.370071, network_zone: 'eu-central' },
  { id: 2, name: 'nbg1', description: 'Nuremberg DC Park 1', country: 'DE', city: 'Nuremberg', latitude: 49.452102, longitude: 11.076665, network_zone: 'eu-central' },
  { id: 3, name: 'hel1', description: 'Helsinki DC Park 1', country: 'FI', city: 'Helsinki', latitude: 60.169855, longitude: 24.938379, network_zone: 'eu-central' },
  { id: 4, name: 'ash', description: 'Ashburn, VA', country: 'US', city: 'Ashburn, VA', latitude: 39.045821, longitude: -77.487073, network_zone: 'us-east' },
];

const price = (net: number) => ({ net: net.toFixed(10), gross: (net * 1.19).toFixed(10) });
const DEPRECATION = { announced: '2024-06-01T00:00:00+00:00', unavailable_after: '2024-09-01T00:00:00+00:00' };

function serverType(id: number, name: string, cores: number, memory: number, disk: number, architecture: string, cpu_type: string, net: number, where: string[], extra: Record<string, unknown> = {}) {
  return {
    id, name, description: name.toUpperCase(), category: 'regular_purpose', cores, memory, disk, storage_type: 'local', cpu_type, architecture,
    deprecated: false, deprecation: null, included_traffic: 0,
    prices: where.map((location) => ({ location, price_hourly: price(net / 730), price_monthly: price(net), included_traffic: 21990232555520, price_per_tb_traffic: price(1) })),
    locations: where.map((n) => ({ id: LOCATIONS.find((l) => l.name === n)!.id, name: n, recommended: false, available: true, deprecation: null })),
    ...extra,
  };
}

/** A catalog shaped like Hetzner's today: shared x86, shared Arm, dedicated, and a retired generation. */
const SERVER_TYPES = [
  serverType(1, 'cx11', 1, 2, 20, 'x86', 'shared', 3.29, ['fsn1', 'nbg1'], { deprecated: true, deprecation: DEPRECATION }),
  serverType(22, 'cx22', 2, 4, 40, 'x86', 'shared', 3.79, ['fsn1', 'nbg1', 'hel1']),
  serverType(32, 'cx32', 4, 8, 80, 'x86', 'shared', 6.8, ['fsn1', 'nbg1', 'hel1']),
  serverType(45, 'cax11', 2, 4, 40, 'arm', 'shared', 3.29, ['fsn1', 'hel1']),
  serverType(96, 'cpx21', 3, 4, 80, 'x86', 'shared', 7.55, ['ash', 'fsn1']),
  {
    ...serverType(104, 'ccx13', 2, 8, 80, 'x86', 'dedicated', 12.49, ['fsn1', 'nbg1', 'ash']),
    // sold out in nbg1, being retired in ash
    locations: [
      { id: 1, name: 'fsn1', recommended: true, available: true, deprecation: null },
      { id: 2, name: 'nbg1', recommended: false, available: false, deprecation: null },
      { id: 4, name: 'ash', recommended: false, available: true, deprecation: DEPRECATION },
    ],
  },
];

export class FakeHetzner {
  readonly token: string;
  readonly readOnlyToken: string;
  readonly calls: RecordedCall[] = [];
  readonly servers = new Map<number, FakeServer>();
  readonly floatingIps = new Map<number, FakeFloatingIp>();
  /** the ssh_keys a server was created with (a create parameter only: the server object does not show them) */
  readonly sshKeysOf = new Map<number, string[]>();
  readonly actions = new Map<number, Action>();
  #nextId = 1000;
  #http: Server;
  #url = '';
  #opts: Required<Omit<FakeHetznerOptions, 'rateLimit'>> & { rateLimit: { limit: number; refillPerSec: number } };
  #bucket: { tokens: number; atMs: number };
  #faults: { match: Match; code: string; status: number; message: string }[] = [];
  #actionFaults: { command: string; error: { code: string; message: string } }[] = [];
  #drops: Match[] = [];
  #pauses: { match: Match; run: () => Promise<void> }[] = [];

  constructor(opts: FakeHetznerOptions = {}) {
    this.#opts = {
      token: opts.token ?? 'rw-token-0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
      readOnlyToken: opts.readOnlyToken ?? 'ro-token-fedcba9876543210fedcba9876543210fedcba9876543210fedcba98',
      defaultPerPage: opts.defaultPerPage ?? 2,
      rateLimit: opts.rateLimit ?? { limit: 3600, refillPerSec: 1 },
      actionPolls: opts.actionPolls ?? 2,
    };
    this.token = this.#opts.token;
    this.readOnlyToken = this.#opts.readOnlyToken;
    this.#bucket = { tokens: this.#opts.rateLimit.limit, atMs: Date.now() };
    this.#http = createServer((req, res) => void this.#handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#http.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}/v1`;
    return this.#url;
  }

  get url(): string {
    return this.#url;
  }

  async stop(): Promise<void> {
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  /** the next call matching `match` is answered with this API error instead */
  failNext(match: Match, code: string, status = STATUS_OF[code] ?? 500, message = `injected ${code}`): void {
    this.#faults.push({ match, code, status, message });
  }

  /** the next action with this command ends in `error` */
  failNextAction(command: string, error: { code: string; message: string }): void {
    this.#actionFaults.push({ command, error });
  }

  /** the next matching call is carried out, then the connection is cut before the answer */
  /** before the next call matching `match` is acted on, run `fn` and wait for it (a race, made to happen) */
  pauseBefore(match: Match, fn: () => Promise<void>): void {
    this.#pauses.push({ match, run: fn });
  }

  dropResponseAfterCreate(match: Match): void {
    this.#drops.push(match);
  }

  /** empty the project's bucket (another process spent it) */
  drainBudget(): void {
    this.#bucket = { tokens: 0, atMs: Date.now() };
  }

  callsTo(method: string, path: string | RegExp): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)));
  }

  // ---- HTTP ------------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/^\/v1/, '');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const auth = req.headers.authorization ?? '';
    const readOnly = auth === `Bearer ${this.readOnlyToken}`;
    const record = (status: number) => this.calls.push({ method, path, query: url.searchParams, status, readOnly });

    const send = (status: number, body: unknown) => {
      record(status);
      const headers: Record<string, string> = { ...this.#rateHeaders() };
      if (body === null) {
        res.writeHead(status, headers).end();
      } else {
        headers['content-type'] = 'application/json';
        res.writeHead(status, headers).end(JSON.stringify(body));
      }
    };
    const fail = (status: number, code: string, message: string, details: unknown = {}) => send(status, { error: { code, message, details } });

    if (auth !== `Bearer ${this.token}` && !readOnly) return fail(401, 'unauthorized', 'unable to authenticate');
    if (!this.#take()) return fail(429, 'rate_limit_exceeded', 'limit of 3600 requests per hour reached');
    const fault = this.#takeMatching(this.#faults, method, path);
    if (fault) return fail(fault.status, fault.code, fault.message);
    if (readOnly && method !== 'GET') return fail(403, 'forbidden', 'insufficient permissions for this request');

    let body: Record<string, unknown> = {};
    if (raw) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return fail(400, 'json_error', 'invalid JSON in request body');
      }
    }
    const pause = this.#takeMatching(this.#pauses, method, path);
    if (pause) await pause.run();
    const drop = this.#takeMatching(this.#drops, method, path);
    const out = this.#route(method, path, url.searchParams, body);
    if (drop) {
      // the change is made; the client never hears of it
      record(0);
      req.socket.destroy();
      return;
    }
    if ('error' in out) return fail(out.status, out.error.code, out.error.message, out.error.details ?? {});
    send(out.status, out.body);
  }

  #route(method: string, path: string, q: URLSearchParams, body: Record<string, unknown>): { status: number; body: unknown } | { status: number; error: { code: string; message: string; details?: unknown } } {
    const m = (re: RegExp) => path.match(re);
    let r: RegExpMatchArray | null;
    if (method === 'GET' && path === '/server_types') return this.#page('server_types', SERVER_TYPES, q);
    if (method === 'GET' && path === '/locations') return this.#page('locations', LOCATIONS, q);
    if (method === 'GET' && path === '/pricing') return { status: 200, body: { pricing: PRICING } };
    if (method === 'GET' && path === '/actions') {
      const ids = q.getAll('id').map(Number);
      const found = ids.flatMap((id) => {
        const a = this.actions.get(id);
        if (!a) return [];
        this.#advance(a);
        return [a];
      });
      return this.#page('actions', found.map(actionJson), q);
    }
    if (method === 'GET' && (r = m(/^\/actions\/(\d+)$/))) {
      const a = this.actions.get(Number(r[1]));
      if (!a) return notFound('action');
      this.#advance(a);
      return { status: 200, body: { action: actionJson(a) } };
    }
    if (method === 'GET' && path === '/servers') return this.#page('servers', [...this.servers.values()].filter((s) => selects(q.get('label_selector'), s.labels)).map(serverJson), q);
    if (method === 'POST' && path === '/servers') return this.#createServer(body);
    if ((r = m(/^\/servers\/(\d+)$/))) {
      const s = this.servers.get(Number(r[1]));
      if (!s) return notFound('server');
      if (method === 'GET') return { status: 200, body: { server: serverJson(s) } };
      if (method === 'DELETE') {
        const a = this.#action('delete_server', [{ id: s.id, type: 'server' }], () => this.servers.delete(s.id));
        s.status = 'deleting';
        for (const f of this.floatingIps.values()) if (f.server === s.id) f.server = null;
        return { status: 200, body: { action: actionJson(a) } };
      }
    }
    if (method === 'GET' && (r = m(/^\/servers\/(\d+)\/actions$/))) {
      const id = Number(r[1]);
      const status = q.get('status');
      const list = [...this.actions.values()].filter((a) => a.resources.some((x) => x.type === 'server' && x.id === id) && (!status || a.status === status));
      return this.#page('actions', list.map(actionJson), q);
    }
    if (method === 'GET' && path === '/floating_ips') return this.#page('floating_ips', [...this.floatingIps.values()].filter((f) => selects(q.get('label_selector'), f.labels)), q);
    if (method === 'POST' && path === '/floating_ips') return this.#createFloatingIp(body);
    if ((r = m(/^\/floating_ips\/(\d+)$/))) {
      const f = this.floatingIps.get(Number(r[1]));
      if (!f) return notFound('floating_ip');
      if (method === 'GET') return { status: 200, body: { floating_ip: f } };
      if (method === 'DELETE') {
        this.floatingIps.delete(f.id);
        return { status: 204, body: null };
      }
    }
    if (method === 'POST' && (r = m(/^\/floating_ips\/(\d+)\/actions\/(assign|unassign|change_dns_ptr)$/))) {
      const f = this.floatingIps.get(Number(r[1]));
      if (!f) return notFound('floating_ip');
      const res = [{ id: f.id, type: 'floating_ip' }];
      if (r[2] === 'assign') {
        const server = this.servers.get(Number(body['server']));
        if (!server) return { status: 400, error: { code: 'invalid_input', message: 'invalid input in field server', details: { fields: [{ name: 'server', messages: ['server not found'] }] } } };
        const a = this.#action('assign_floating_ip', [...res, { id: server.id, type: 'server' }], () => {
          for (const s of this.servers.values()) s.public_net.floating_ips = s.public_net.floating_ips.filter((x) => x !== f.id);
          f.server = server.id;
          server.public_net.floating_ips.push(f.id);
        });
        return { status: 201, body: { action: actionJson(a) } };
      }
      if (r[2] === 'unassign') {
        const a = this.#action('unassign_floating_ip', res, () => {
          for (const s of this.servers.values()) s.public_net.floating_ips = s.public_net.floating_ips.filter((x) => x !== f.id);
          f.server = null;
        });
        return { status: 201, body: { action: actionJson(a) } };
      }
      const ip = String(body['ip'] ?? '');
      if (ip !== f.ip) return { status: 400, error: { code: 'invalid_input', message: 'invalid input in field ip', details: { fields: [{ name: 'ip', messages: ['ip does not belong to this floating IP'] }] } } };
      const ptr = body['dns_ptr'];
      const a = this.#action('change_dns_ptr', res, () => {
        f.dns_ptr = f.dns_ptr.filter((d) => d.ip !== ip);
        if (typeof ptr === 'string') f.dns_ptr.push({ ip, dns_ptr: ptr });
      });
      return { status: 201, body: { action: actionJson(a) } };
    }
    return { status: 404, error: { code: 'not_found', message: `no route ${method} ${path}` } };
  }

  #createServer(body: Record<string, unknown>) {
    const type = SERVER_TYPES.find((t) => t.name === body['server_type']);
    const location = LOCATIONS.find((l) => l.name === body['location']);
    const fields = [
      typeof body['name'] === 'string' && body['name'] ? null : { name: 'name', messages: ['Missing data for required field.'] },
      type ? null : { name: 'server_type', messages: ['server type not found'] },
      location ? null : { name: 'location', messages: ['location not found'] },
      typeof body['image'] === 'string' ? null : { name: 'image', messages: ['Missing data for required field.'] },
      'datacenter' in body ? { name: 'datacenter', messages: ['use location'] } : null,
    ].filter((x) => x !== null);
    if (fields.length) return { status: 400, error: { code: 'invalid_input', message: `invalid input in fields ${fields.map((f) => f.name).join(', ')}`, details: { fields } } };
    if ([...this.servers.values()].some((s) => s.name === body['name'])) return { status: 409, error: { code: 'uniqueness_error', message: 'server name is already used', details: { fields: [{ name: 'name' }] } } };
    const id = this.#id();
    const s: FakeServer = {
      id,
      name: String(body['name']),
      status: 'initializing',
      created: new Date().toISOString(),
      server_type: type!,
      location: location!,
      image: { name: String(body['image']) },
      labels: (body['labels'] as Record<string, string>) ?? {},
      user_data: String(body['user_data'] ?? ''),
      public_net: { ipv4: { id: id + 1, ip: `203.0.113.${id % 250}`, blocked: false, dns_ptr: `static.${id}.example` }, ipv6: { id: id + 2, ip: `2001:db8:${id.toString(16)}::/64`, blocked: false, dns_ptr: [] }, floating_ips: [], firewalls: [] },
      protection: { delete: false, rebuild: false },
    };
    this.servers.set(id, s);
    const sshKeys = Array.isArray(body['ssh_keys']) ? (body['ssh_keys'] as unknown[]).map(String) : [];
    this.sshKeysOf.set(id, sshKeys);
    const create = this.#action('create_server', [{ id, type: 'server' }], () => (s.status = 'running'));
    const start = this.#action('start_server', [{ id, type: 'server' }], () => {});
    // as the real API: a root password only for a server created without SSH keys
    return { status: 201, body: { server: serverJson(s), action: actionJson(create), next_actions: [actionJson(start)], root_password: sshKeys.length ? null : `fake-root-${id}` } };
  }

  #createFloatingIp(body: Record<string, unknown>) {
    const type = body['type'];
    const location = LOCATIONS.find((l) => l.name === body['home_location']);
    if ((type !== 'ipv4' && type !== 'ipv6') || !location) {
      return { status: 400, error: { code: 'invalid_input', message: 'invalid input in fields type, home_location', details: { fields: [{ name: 'type', messages: ['must be ipv4 or ipv6'] }] } } };
    }
    const id = this.#id();
    const f: FakeFloatingIp = {
      id, name: `floating-ip-${id}`, description: (body['description'] as string) ?? null, created: new Date().toISOString(),
      ip: type === 'ipv4' ? `198.51.100.${id % 250}` : `2001:db8:f::${id.toString(16)}`, type, server: null, dns_ptr: [], home_location: location,
      blocked: false, protection: { delete: false }, labels: (body['labels'] as Record<string, string>) ?? {},
    };
    this.floatingIps.set(id, f);
    let action: Action | null = null;
    const server = body['server'] !== undefined ? this.servers.get(Number(body['server'])) : undefined;
    if (server) {
      action = this.#action('assign_floating_ip', [{ id, type: 'floating_ip' }, { id: server.id, type: 'server' }], () => {
        f.server = server.id;
        server.public_net.floating_ips.push(id);
      });
    }
    return { status: 201, body: { floating_ip: f, action: action ? actionJson(action) : null } };
  }

  #action(command: string, resources: { id: number; type: string }[], onSuccess: () => void): Action {
    const i = this.#actionFaults.findIndex((f) => f.command === command);
    const failWith = i >= 0 ? this.#actionFaults.splice(i, 1)[0]!.error : null;
    const a: Action = { id: this.#id(), command, status: 'running', progress: 0, started: new Date().toISOString(), finished: null, error: null, resources, pollsLeft: this.#opts.actionPolls, failWith, onSuccess };
    this.actions.set(a.id, a);
    return a;
  }

  /** one poll of a running action brings it one step closer to its end */
  #advance(a: Action): void {
    if (a.status !== 'running') return;
    a.pollsLeft--;
    a.progress = Math.min(99, a.progress + 40);
    if (a.pollsLeft > 0) return;
    a.finished = new Date().toISOString();
    a.progress = 100;
    if (a.failWith) {
      a.status = 'error';
      a.error = a.failWith;
    } else {
      a.status = 'success';
      a.onSuccess();
    }
  }

  #page(key: string, items: unknown[], q: URLSearchParams) {
    const perPage = Math.min(50, Number(q.get('per_page') ?? this.#opts.defaultPerPage) || this.#opts.defaultPerPage);
    const page = Math.max(1, Number(q.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    return {
      status: 200,
      body: {
        [key]: items.slice((page - 1) * perPage, page * perPage),
        meta: { pagination: { page, per_page: perPage, previous_page: page > 1 ? page - 1 : null, next_page: page < last ? page + 1 : null, last_page: last, total_entries: items.length } },
      },
    };
  }

  #take(): boolean {
    this.#refill();
    if (this.#bucket.tokens < 1) return false;
    this.#bucket.tokens -= 1;
    return true;
  }

  #refill(): void {
    const now = Date.now();
    const { limit, refillPerSec } = this.#opts.rateLimit;
    this.#bucket = { tokens: Math.min(limit, this.#bucket.tokens + ((now - this.#bucket.atMs) / 1000) * refillPerSec), atMs: now };
  }

  #rateHeaders(): Record<string, string> {
    this.#refill();
    const { limit, refillPerSec } = this.#opts.rateLimit;
    const remaining = Math.floor(this.#bucket.tokens);
    // whole seconds, as the real API sends them: the moment the bucket is full again
    const reset = Math.ceil((Date.now() + ((limit - this.#bucket.tokens) / refillPerSec) * 1000) / 1000);
    return { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': String(reset) };
  }

  #takeMatching<T extends { match: Match } | Match>(list: T[], method: string, path: string): T | undefined {
    const i = list.findIndex((f) => {
      const match: Match = 'match' in f ? (f as { match: Match }).match : (f as Match);
      return (!match.method || match.method === method) && (!match.path || (typeof match.path === 'string' ? match.path === path : match.path.test(path)));
    });
    return i >= 0 ? list.splice(i, 1)[0] : undefined;
  }

  #id(): number {
    return this.#nextId++;
  }
}

const STATUS_OF: Record<string, number> = {
  locked: 423,
  conflict: 409,
  rate_limit_exceeded: 429,
  not_found: 404,
  invalid_input: 400,
  uniqueness_error: 409,
  resource_limit_exceeded: 403,
  forbidden: 403,
  server_error: 500,
  unavailable: 503,
};

const PRICING = {
  currency: 'EUR',
  vat_rate: '19.00',
  floating_ip: { price_monthly: price(3) },
  floating_ips: [
    { type: 'ipv4', prices: LOCATIONS.map((l) => ({ location: l.name, price_monthly: price(3) })) },
    { type: 'ipv6', prices: LOCATIONS.map((l) => ({ location: l.name, price_monthly: price(1) })) },
  ],
  primary_ips: [{ type: 'ipv4', prices: LOCATIONS.map((l) => ({ location: l.name, price_hourly: price(0.0008), price_monthly: price(0.5) })) }],
  server_types: SERVER_TYPES.map((t) => ({ id: t.id, name: t.name, prices: t.prices })),
};

function actionJson(a: Action) {
  const { pollsLeft: _p, failWith: _f, onSuccess: _o, ...wire } = a;
  return wire;
}

function serverJson(s: FakeServer) {
  const { user_data: _u, ...wire } = s;
  return { ...wire, locked: false, private_net: [], volumes: [], load_balancers: [], included_traffic: 0, primary_disk_size: 40 };
}

const notFound = (what: string) => ({ status: 404, error: { code: 'not_found', message: `${what} not found` } });

/** `k=v,k2=v2`: every pair must match (the subset of Hetzner's label selectors we use) */
function selects(selector: string | null, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return k !== undefined && labels[k] === v;
  });
}

/**
 * The real Hetzner client with test-sized pages, retries and polls, for a harness's `cloudProvider`:
 * two items a page makes every list page; `maxAttempts` 1 turns a dropped answer into a failure (a
 * crash part-way).
 */
export function quickHetznerClient(p: ProviderProjectConnection, maxAttempts: number): HetznerCloudProvider {
  return new HetznerCloudProvider({
    token: p.token,
    project: p.name,
    baseUrl: p.apiUrl,
    perPage: 2,
    retry: { maxAttempts, baseDelayMs: 5, multiplier: 2, maxDelayMs: 20 },
    poll: { initialDelayMs: 5, multiplier: 1.5, maxDelayMs: 20, timeoutMs: 5000, batchSize: 25 },
  });
}
