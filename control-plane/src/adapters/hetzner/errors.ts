/**
 * Hetzner's error answers (`{"error":{"code","message","details"}}`) and transport failures, mapped
 * onto the provider-neutral `ProviderError` codes. The code lists follow hcloud-go's `error.go`.
 *
 * One rule beyond the table: `forbidden` on a write means a read-only token (Hetzner tokens are either
 * "Read" or "Read & Write"), and the operator is told exactly that, because the API's own "insufficient
 * permissions" does not say which token or what to do.
 *
 * No message built here contains the token: the inputs are the method, the path (no query string with
 * secrets exists in this API), the provider's code and message, and the project's display name.
 */
import { ProviderError, type ProviderErrorCode } from '../../domain/provisioning/provider-errors.js';

export const PROVIDER = 'hetzner';

const BY_API_CODE: Record<string, ProviderErrorCode> = {
  unauthorized: 'PROVIDER_UNAUTHENTICATED',
  token_readonly: 'PROVIDER_TOKEN_READ_ONLY',
  forbidden: 'PROVIDER_FORBIDDEN',
  rate_limit_exceeded: 'PROVIDER_RATE_LIMITED',
  limit_reached: 'PROVIDER_RATE_LIMITED',
  locked: 'PROVIDER_LOCKED',
  conflict: 'PROVIDER_CONFLICT',
  not_found: 'PROVIDER_NOT_FOUND',
  invalid_input: 'PROVIDER_INVALID_INPUT',
  json_error: 'PROVIDER_INVALID_INPUT',
  invalid_server_type: 'PROVIDER_INVALID_INPUT',
  unsupported_error: 'PROVIDER_INVALID_INPUT',
  deprecated_api_endpoint: 'PROVIDER_INVALID_INPUT',
  uniqueness_error: 'PROVIDER_UNIQUENESS',
  resource_limit_exceeded: 'PROVIDER_RESOURCE_LIMIT',
  // "sold out here": not transient on the scale of a retry; the operator picks another location
  resource_unavailable: 'PROVIDER_RESOURCE_LIMIT',
  placement_error: 'PROVIDER_RESOURCE_LIMIT',
  no_space_left_in_location: 'PROVIDER_RESOURCE_LIMIT',
  protected: 'PROVIDER_PROTECTED',
  // "locked, contact support": unlike `locked`, waiting does not help
  resource_locked: 'PROVIDER_PROTECTED',
  server_error: 'PROVIDER_UNAVAILABLE',
  service_error: 'PROVIDER_UNAVAILABLE',
  unavailable: 'PROVIDER_UNAVAILABLE',
  maintenance: 'PROVIDER_UNAVAILABLE',
  bad_gateway: 'PROVIDER_UNAVAILABLE',
  timeout: 'PROVIDER_UNAVAILABLE',
  robot_unavailable: 'PROVIDER_UNAVAILABLE',
  unknown_error: 'PROVIDER_UNAVAILABLE',
};

function byStatus(status: number): ProviderErrorCode {
  if (status === 401) return 'PROVIDER_UNAUTHENTICATED';
  if (status === 403) return 'PROVIDER_FORBIDDEN';
  if (status === 404) return 'PROVIDER_NOT_FOUND';
  if (status === 409) return 'PROVIDER_CONFLICT';
  if (status === 423) return 'PROVIDER_LOCKED';
  if (status === 429) return 'PROVIDER_RATE_LIMITED';
  if (status >= 500) return 'PROVIDER_UNAVAILABLE';
  return 'PROVIDER_PROTOCOL';
}

const isWrite = (method: string): boolean => method !== 'GET' && method !== 'HEAD';

export interface ErrorContext {
  method: string;
  /** the API path, e.g. `/servers/42` */
  path: string;
  /** how operators know this project, e.g. `eu-fleet` (never the token) */
  project: string;
  retryAfterMs?: number;
}

/** An error answer → a ProviderError. `body` is the parsed JSON, or null when the body was not JSON. */
export function errorFromResponse(status: number, body: unknown, ctx: ErrorContext): ProviderError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  const apiCode = typeof e?.code === 'string' ? e.code : null;
  const apiMessage = typeof e?.message === 'string' ? e.message : `HTTP ${status}`;
  let code = (apiCode && BY_API_CODE[apiCode]) || byStatus(status);
  const operation = `${ctx.method} ${ctx.path}`;
  if (code === 'PROVIDER_FORBIDDEN' && isWrite(ctx.method)) code = 'PROVIDER_TOKEN_READ_ONLY';

  const detail =
    code === 'PROVIDER_TOKEN_READ_ONLY'
      ? `the Hetzner API token for project ${ctx.project} is read-only, so ${operation} was refused; ` +
        `create a token with "Read & Write" permission in the Hetzner Cloud console (Security → API tokens) and configure that one`
      : code === 'PROVIDER_UNAUTHENTICATED'
        ? `Hetzner rejected the API token for project ${ctx.project} (${apiMessage}); it is unknown, revoked or mistyped`
        : code === 'PROVIDER_RESOURCE_LIMIT'
          ? `Hetzner refused ${operation} for project ${ctx.project}: ${apiMessage} (${apiCode ?? status}); ask Hetzner to raise the project's limit or choose another location or type`
          : `Hetzner refused ${operation} for project ${ctx.project}: ${apiMessage} (${apiCode ?? `HTTP ${status}`})`;

  return new ProviderError(code, detail, {
    provider: PROVIDER,
    apiCode,
    status,
    operation,
    ...(ctx.retryAfterMs !== undefined ? { retryAfterMs: ctx.retryAfterMs } : {}),
    ...(e?.details !== undefined && e.details !== null ? { details: e.details } : {}),
  });
}

/**
 * A request that got no (complete) answer. Only the error's class and code travel on, never the error
 * object itself: a transport error may hold the request it failed on, headers included.
 */
export function errorFromTransport(e: unknown, ctx: ErrorContext): ProviderError {
  const name = (e as { name?: unknown })?.name;
  const errCode = (e as { code?: unknown })?.code;
  const label = [typeof name === 'string' ? name : 'Error', typeof errCode === 'string' ? errCode : null].filter(Boolean).join(' ');
  const timedOut = typeof errCode === 'string' && /TIMEOUT/.test(errCode);
  const operation = `${ctx.method} ${ctx.path}`;
  return new ProviderError(timedOut ? 'PROVIDER_TIMEOUT' : 'PROVIDER_NETWORK', `no complete answer from Hetzner to ${operation} for project ${ctx.project} (${label})`, {
    provider: PROVIDER,
    operation,
    cause: { name: typeof name === 'string' ? name : 'Error', code: typeof errCode === 'string' ? errCode : null },
  });
}
