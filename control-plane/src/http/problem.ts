/**
 * The only table from error code to HTTP status, and the problem+json document (RFC 9457) every
 * error response uses. `code` is the stable, machine-readable part; `detail` is for people.
 */
import type { ErrorCode, FieldProblem } from '../domain/shared/errors.js';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_STATE_TRANSITION: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  DEPENDENCY_UNAVAILABLE: 503,
  INTERNAL: 500,
};

const TITLES: Record<ErrorCode, string> = {
  VALIDATION_FAILED: 'The request is not valid',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Not allowed',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Conflict with the current state',
  INVALID_STATE_TRANSITION: 'State transition not allowed',
  PRECONDITION_FAILED: 'Precondition failed',
  PAYLOAD_TOO_LARGE: 'Request body too large',
  TOO_MANY_REQUESTS: 'Too many requests',
  DEPENDENCY_UNAVAILABLE: 'A dependency is unavailable',
  INTERNAL: 'Internal error',
};

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance: string;
  request_id: string | null;
  errors?: FieldProblem[];
  context?: Record<string, unknown>;
}

export function problem(
  code: ErrorCode,
  detail: string,
  instance: string,
  requestId: string | null,
  extra: { errors?: FieldProblem[] | undefined; context?: Record<string, unknown> | undefined } = {},
): ProblemDocument {
  const doc: ProblemDocument = {
    type: `urn:kumo-control-plane:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[code],
    status: STATUS_BY_CODE[code],
    code,
    detail,
    instance,
    request_id: requestId,
  };
  if (extra.errors && extra.errors.length > 0) doc.errors = extra.errors;
  if (extra.context) doc.context = extra.context;
  return doc;
}
