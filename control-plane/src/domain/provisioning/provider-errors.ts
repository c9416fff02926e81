/**
 * Provider failures as typed values with stable codes.
 *
 * A `ProviderError` is an `AppError` (domain/shared/errors.ts), so the HTTP layer's one table maps it to
 * a status without knowing about clouds: `appCode` is the project-wide code, `providerCode` the stable
 * provisioning code a use case may branch on, and `apiCode` the provider's own spelling (for the
 * operator, e.g. `resource_limit_exceeded`). `retryable` says whether the same request may simply be
 * sent again (the retry policy in retry-policy.ts decides how and when).
 *
 * Messages are written for the operator and never contain the API token: adapters build them from the
 * provider's error code and message, the method and the path, nothing else.
 */
import { AppError, type ErrorCode } from '../shared/errors.js';
import type { ProviderAction } from './cloud-provider.js';

export const PROVIDER_ERROR_CODES = [
  /** the token may only read (a Hetzner "Read" token) and this was a write */
  'PROVIDER_TOKEN_READ_ONLY',
  /** the token is unknown, revoked or missing */
  'PROVIDER_UNAUTHENTICATED',
  /** the token may not do this (other than being read-only) */
  'PROVIDER_FORBIDDEN',
  /** the project's request budget is spent; wait for the refill */
  'PROVIDER_RATE_LIMITED',
  /** another action is running on the resource; try again shortly */
  'PROVIDER_LOCKED',
  /** the resource changed during the request; try again */
  'PROVIDER_CONFLICT',
  'PROVIDER_NOT_FOUND',
  /** the request was refused as invalid (a bug on our side or a stale catalog) */
  'PROVIDER_INVALID_INPUT',
  /** a unique field (the server name) is taken */
  'PROVIDER_UNIQUENESS',
  /** the project's quota (servers, IPs, cores) is reached: the operator asks the provider to raise it */
  'PROVIDER_RESOURCE_LIMIT',
  /** the resource is protected against this change */
  'PROVIDER_PROTECTED',
  /** the provider's backend failed or is in maintenance */
  'PROVIDER_UNAVAILABLE',
  /** no answer: connection refused or reset, or a response cut off */
  'PROVIDER_NETWORK',
  /** we stopped waiting (request or action wait); the change may still complete */
  'PROVIDER_TIMEOUT',
  /** an asynchronous action ended in `error` */
  'PROVIDER_ACTION_FAILED',
  /** an idempotency key matched more than one resource: a human must look */
  'PROVIDER_AMBIGUOUS',
  /** the provider answered something this adapter does not understand */
  'PROVIDER_PROTOCOL',
] as const;

export type ProviderErrorCode = (typeof PROVIDER_ERROR_CODES)[number];

/** The project-wide code each provisioning code surfaces as (one table, so the HTTP mapping stays single). */
const APP_CODE: Record<ProviderErrorCode, ErrorCode> = {
  PROVIDER_TOKEN_READ_ONLY: 'FORBIDDEN',
  PROVIDER_UNAUTHENTICATED: 'DEPENDENCY_UNAVAILABLE',
  PROVIDER_FORBIDDEN: 'FORBIDDEN',
  PROVIDER_RATE_LIMITED: 'TOO_MANY_REQUESTS',
  PROVIDER_LOCKED: 'CONFLICT',
  PROVIDER_CONFLICT: 'CONFLICT',
  PROVIDER_NOT_FOUND: 'NOT_FOUND',
  PROVIDER_INVALID_INPUT: 'VALIDATION_FAILED',
  PROVIDER_UNIQUENESS: 'CONFLICT',
  PROVIDER_RESOURCE_LIMIT: 'PRECONDITION_FAILED',
  PROVIDER_PROTECTED: 'PRECONDITION_FAILED',
  PROVIDER_UNAVAILABLE: 'DEPENDENCY_UNAVAILABLE',
  PROVIDER_NETWORK: 'DEPENDENCY_UNAVAILABLE',
  PROVIDER_TIMEOUT: 'DEPENDENCY_UNAVAILABLE',
  PROVIDER_ACTION_FAILED: 'DEPENDENCY_UNAVAILABLE',
  PROVIDER_AMBIGUOUS: 'CONFLICT',
  PROVIDER_PROTOCOL: 'DEPENDENCY_UNAVAILABLE',
};

/** Codes where sending the same request again is safe and likely to work (no side effect happened). */
const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set<ProviderErrorCode>([
  'PROVIDER_RATE_LIMITED',
  'PROVIDER_LOCKED',
  'PROVIDER_CONFLICT',
  'PROVIDER_UNAVAILABLE',
  'PROVIDER_NETWORK',
  'PROVIDER_TIMEOUT',
]);

export const isRetryableProviderCode = (code: ProviderErrorCode): boolean => RETRYABLE.has(code);

export interface ProviderErrorInit {
  provider: string;
  /** the provider's own error code, e.g. `locked`; null for network failures */
  apiCode?: string | null;
  /** HTTP status, when there was a response */
  status?: number | null;
  /** `POST /servers`: what was being done (never a URL with credentials, never headers) */
  operation?: string;
  /** the failed action, for `PROVIDER_ACTION_FAILED` */
  action?: ProviderAction;
  /** how long the provider asked us to wait, when it said (rate limits) */
  retryAfterMs?: number;
  /** the provider's structured details (e.g. invalid_input fields), already free of secrets */
  details?: unknown;
  cause?: unknown;
}

export class ProviderError extends AppError {
  readonly providerCode: ProviderErrorCode;
  readonly provider: string;
  readonly apiCode: string | null;
  readonly status: number | null;
  readonly operation: string | null;
  readonly action: ProviderAction | null;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;

  constructor(code: ProviderErrorCode, detail: string, init: ProviderErrorInit) {
    super(APP_CODE[code], detail, {
      context: {
        provider_code: code,
        provider: init.provider,
        ...(init.apiCode ? { api_code: init.apiCode } : {}),
        ...(init.status ? { status: init.status } : {}),
        ...(init.operation ? { operation: init.operation } : {}),
        ...(init.action ? { action_id: init.action.id, action_command: init.action.command } : {}),
        ...(init.details !== undefined ? { details: init.details } : {}),
      },
      ...(init.cause !== undefined ? { cause: init.cause } : {}),
    });
    this.name = 'ProviderError';
    this.providerCode = code;
    this.provider = init.provider;
    this.apiCode = init.apiCode ?? null;
    this.status = init.status ?? null;
    this.operation = init.operation ?? null;
    this.action = init.action ?? null;
    this.retryable = isRetryableProviderCode(code);
    this.retryAfterMs = init.retryAfterMs ?? null;
  }
}

export const isProviderError = (e: unknown): e is ProviderError => e instanceof ProviderError;

/** The error for an action that ended in `error`: it carries the action and the provider's reason. */
export function actionFailed(provider: string, action: ProviderAction): ProviderError {
  const reason = action.error ? `${action.error.message} (${action.error.code})` : 'no reason given';
  return new ProviderError('PROVIDER_ACTION_FAILED', `${provider} action ${action.id} (${action.command}) failed: ${reason}`, {
    provider,
    apiCode: action.error?.code ?? null,
    action,
  });
}
