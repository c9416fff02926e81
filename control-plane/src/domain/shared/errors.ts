/**
 * Typed, expected failures. Every one carries a stable `code` that clients may branch on; the HTTP
 * status (http/errors.ts) and later the SMTP reply are derived from the code in exactly one table each.
 * Bugs are not AppErrors: they stay ordinary exceptions and surface as 500 INTERNAL.
 */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'INVALID_STATE_TRANSITION',
  'PRECONDITION_FAILED',
  'PAYLOAD_TOO_LARGE',
  'TOO_MANY_REQUESTS',
  'DEPENDENCY_UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FieldProblem {
  /** JSON-pointer-like path into the request, e.g. `body.domain` */
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly fields: FieldProblem[] | undefined;
  /** extra, non-secret context for the problem document and logs */
  readonly context: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    opts: { fields?: FieldProblem[]; context?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.detail = detail;
    this.fields = opts.fields;
    this.context = opts.context;
  }
}

export const notFound = (what: string, id: string): AppError =>
  new AppError('NOT_FOUND', `${what} ${id} does not exist`, { context: { what, id } });

export const conflict = (detail: string, context?: Record<string, unknown>): AppError =>
  new AppError('CONFLICT', detail, context ? { context } : {});

export const validationFailed = (fields: FieldProblem[]): AppError =>
  new AppError(
    'VALIDATION_FAILED',
    fields.length === 1 ? `${fields[0]!.path}: ${fields[0]!.message}` : `${fields.length} fields are invalid`,
    { fields },
  );
