/**
 * One Hetzner Cloud project's HTTP channel: bearer token, request budget, retries, error mapping,
 * pagination. Everything above it (hetzner-cloud-provider.ts) speaks in API paths and JSON bodies.
 *
 * Why these pieces sit together: every request must (1) wait for the project's budget
 * (domain/provisioning/request-budget.ts) before it leaves, (2) update the budget from the answer's
 * `RateLimit-*` headers, (3) be classified and maybe retried (retry-policy.ts), and (4) never let the
 * token escape into an error or a log. Doing that in one loop keeps the rules in one place.
 *
 * I/O: undici. Time and randomness are injectable so the tests (and the pure helpers) stay exact.
 */
import { request, type Dispatcher } from 'undici';
import { ProviderError } from '../../domain/provisioning/provider-errors.js';
import {
  createBudget,
  HETZNER_BUDGET,
  observeHeaders,
  observeRateLimited,
  parseRateLimitHeaders,
  reserveRequest,
  type RequestBudget,
} from '../../domain/provisioning/request-budget.js';
import { decideRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../domain/provisioning/retry-policy.js';
import { errorFromResponse, errorFromTransport, PROVIDER } from './errors.js';
import type { WireMeta } from './wire.js';

export const HETZNER_API_URL = 'https://api.hetzner.cloud/v1';

/**
 * The budget of one project, shared by every client of that project in this process (API handlers
 * and worker jobs alike), so they queue behind each other instead of each assuming a full bucket.
 */
export class ProjectBudget {
  current: RequestBudget;
  constructor(opts: { limit?: number; refillPerSec?: number; nowMs: number }) {
    this.current = createBudget(opts);
  }
}

/** What the transport reports, for metrics and logs. Never carries the token or request bodies. */
export type TransportEvent =
  | { kind: 'budget_wait'; operation: string; waitMs: number }
  | { kind: 'retry'; operation: string; attempt: number; code: string; delayMs: number }
  | { kind: 'reconcile'; operation: string; attempt: number; code: string; found: boolean }
  | { kind: 'rate_limited'; operation: string };

export interface TransportOptions {
  /** the project's API token (Read & Write for provisioning); kept private to this object */
  token: string;
  /** how operators name the project, used in error messages instead of anything secret */
  project: string;
  /** default https://api.hetzner.cloud/v1 */
  baseUrl?: string;
  /** share one per project; default: a fresh 3,600/hour budget */
  budget?: ProjectBudget;
  retry?: RetryPolicy;
  /** per-request timeout (headers and body), default 30 s */
  requestTimeoutMs?: number;
  /** page size for list endpoints (the API allows up to 50) */
  perPage?: number;
  dispatcher?: Dispatcher;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** draws in [0, 1) for retry jitter */
  random?: () => number;
  onEvent?: (e: TransportEvent) => void;
}

export type Query = Record<string, string | number | (string | number)[] | undefined>;

export interface CallOptions<R> {
  query?: Query;
  body?: unknown;
  /** sending it twice has the same effect as once (GET, DELETE, assign, change_dns_ptr) */
  idempotent: boolean;
  /**
   * For creates: after a failure that may have landed, look for what the request would have made.
   * Returning a value ends the call with it; null means "not there, send again".
   */
  reconcile?: () => Promise<R | null>;
}

export type CallResult<B, R> = { kind: 'answer'; status: number; body: B } | { kind: 'reconciled'; value: R };

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class HetznerTransport {
  readonly project: string;
  readonly #token: string;
  readonly #baseUrl: string;
  readonly #budget: ProjectBudget;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #onEvent: (e: TransportEvent) => void;
  readonly perPage: number;

  constructor(opts: TransportOptions) {
    if (!opts.token) throw new ProviderError('PROVIDER_UNAUTHENTICATED', `no Hetzner API token is configured for project ${opts.project}`, { provider: PROVIDER });
    this.project = opts.project;
    this.#token = opts.token;
    this.#baseUrl = (opts.baseUrl ?? HETZNER_API_URL).replace(/\/+$/, '');
    this.#now = opts.now ?? (() => Date.now());
    this.#budget = opts.budget ?? new ProjectBudget({ limit: HETZNER_BUDGET.limit, refillPerSec: HETZNER_BUDGET.refillPerSec, nowMs: this.#now() });
    this.#retry = opts.retry ?? DEFAULT_RETRY_POLICY;
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#dispatcher = opts.dispatcher;
    this.#sleep = opts.sleep ?? defaultSleep;
    this.#random = opts.random ?? Math.random;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.perPage = Math.min(50, Math.max(1, opts.perPage ?? 50));
  }

  /** Never print the token, even if someone logs the transport object itself. */
  toJSON(): Record<string, unknown> {
    return { provider: PROVIDER, project: this.project, baseUrl: this.#baseUrl };
  }

  /**
   * One API call with budget, retries and error mapping. Resolves with the answer (2xx) or the
   * reconciled value; rejects with a ProviderError.
   */
  async call<B, R = never>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: CallOptions<R>): Promise<CallResult<B, R>> {
    const operation = `${method} ${path}`;
    for (let attempt = 1; ; attempt++) {
      await this.#waitForBudget(operation);
      let failure: ProviderError;
      try {
        const res = await request(this.#url(path, opts.query), {
          method,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            'user-agent': 'kumo-control-plane',
            ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
          headersTimeout: this.#timeoutMs,
          bodyTimeout: this.#timeoutMs,
          ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
        });
        const text = await res.body.text();
        const headers = parseRateLimitHeaders(res.headers);
        const nowMs = this.#now();
        const json = parseJson(text);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          this.#budget.current = observeHeaders(this.#budget.current, headers, nowMs);
          return { kind: 'answer', status: res.statusCode, body: (json ?? {}) as B };
        }
        const retryAfterMs = retryAfter(res.headers['retry-after']);
        if (res.statusCode === 429) {
          this.#budget.current = observeRateLimited(this.#budget.current, headers, nowMs, retryAfterMs);
          this.#onEvent({ kind: 'rate_limited', operation });
        } else {
          this.#budget.current = observeHeaders(this.#budget.current, headers, nowMs);
        }
        failure = this.#scrub(errorFromResponse(res.statusCode, json, { method, path, project: this.project, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }));
      } catch (e) {
        if (e instanceof ProviderError) throw this.#scrub(e);
        failure = this.#scrub(errorFromTransport(e, { method, path, project: this.project }));
      }

      const decision = decideRetry(
        {
          code: failure.providerCode,
          attempt,
          idempotent: opts.idempotent,
          canReconcile: opts.reconcile !== undefined,
          ...(failure.retryAfterMs !== null ? { retryAfterMs: failure.retryAfterMs } : {}),
          jitter01: this.#random(),
        },
        this.#retry,
      );
      if (decision.action === 'give_up') throw failure;
      if (decision.delayMs > 0) await this.#sleep(decision.delayMs);
      if (decision.action === 'reconcile') {
        const found = await opts.reconcile!();
        this.#onEvent({ kind: 'reconcile', operation, attempt, code: failure.providerCode, found: found !== null });
        if (found !== null) return { kind: 'reconciled', value: found };
      } else {
        this.#onEvent({ kind: 'retry', operation, attempt, code: failure.providerCode, delayMs: decision.delayMs });
      }
    }
  }

  /** GET returning the body; a `not_found` becomes null (the resource is simply not there). */
  async getOrNull<B>(path: string, query?: Query): Promise<B | null> {
    try {
      const r = await this.call<B>('GET', path, { idempotent: true, ...(query ? { query } : {}) });
      return r.kind === 'answer' ? r.body : null;
    } catch (e) {
      if (e instanceof ProviderError && e.providerCode === 'PROVIDER_NOT_FOUND') return null;
      throw e;
    }
  }

  /**
   * Every item of a list endpoint, following `meta.pagination.next_page` until it is null. A bound on
   * the number of pages keeps a misbehaving answer from looping forever.
   */
  async listAll<T>(path: string, key: string, query: Query = {}): Promise<T[]> {
    const out: T[] = [];
    let page: number | null = 1;
    for (let seen = 0; page !== null; seen++) {
      if (seen >= 10_000) throw new ProviderError('PROVIDER_PROTOCOL', `GET ${path} kept announcing more pages`, { provider: PROVIDER, operation: `GET ${path}` });
      const r: CallResult<WireMeta & Record<string, unknown>, never> = await this.call('GET', path, { idempotent: true, query: { ...query, page, per_page: this.perPage } });
      if (r.kind !== 'answer') break;
      const items = r.body[key];
      if (!Array.isArray(items)) throw new ProviderError('PROVIDER_PROTOCOL', `GET ${path} answered without a "${key}" list`, { provider: PROVIDER, operation: `GET ${path}` });
      out.push(...(items as T[]));
      const next: number | null | undefined = r.body.meta?.pagination?.next_page;
      page = typeof next === 'number' && next > page ? next : null;
    }
    return out;
  }

  async #waitForBudget(operation: string): Promise<void> {
    const { budget, waitMs } = reserveRequest(this.#budget.current, this.#now());
    this.#budget.current = budget;
    if (waitMs > 0) {
      this.#onEvent({ kind: 'budget_wait', operation, waitMs });
      await this.#sleep(waitMs);
    }
  }

  #url(path: string, query?: Query): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
    }
    const qs = params.toString();
    return `${this.#baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /**
   * Belt and braces: no message we build contains the token, but a provider message could echo
   * something back; strip it wherever it might appear before the error leaves this object.
   */
  #scrub(e: ProviderError): ProviderError {
    if (!e.message.includes(this.#token) && !JSON.stringify(e.context ?? {}).includes(this.#token)) return e;
    const clean = (s: string) => s.split(this.#token).join('[redacted]');
    return new ProviderError(e.providerCode, clean(e.message), {
      provider: e.provider,
      apiCode: e.apiCode,
      status: e.status,
      ...(e.operation ? { operation: clean(e.operation) } : {}),
      ...(e.retryAfterMs !== null ? { retryAfterMs: e.retryAfterMs } : {}),
      details: JSON.parse(clean(JSON.stringify(e.context?.['details'] ?? null))),
    });
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** `Retry-After` in seconds (the HTTP-date form is not used by this API). */
function retryAfter(h: string | string[] | undefined): number | undefined {
  const v = Number(Array.isArray(h) ? h[0] : h);
  return h !== undefined && Number.isFinite(v) && v >= 0 ? v * 1000 : undefined;
}
