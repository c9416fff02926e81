/**
 * PostgreSQL access: one pg pool per process wrapped by Kysely, plus the translation of driver errors
 * into typed AppErrors (unique violations become 409 CONFLICT, check violations and values the
 * database cannot store 400, a database that cannot be reached or stopped answering 503), so the API
 * never leaks a raw driver message and never answers 500 for an outage.
 *
 * Every connection has bounded waits: connecting (or waiting for a pooled connection), each statement
 * on the server (statement_timeout, which cancels it cleanly), and each answer on the client side
 * (query_timeout, a little longer), because a server that stops answering without closing the
 * connection is not cancelled by its own timer.
 */
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { AppError } from '../../domain/shared/errors.js';
import type { Database } from './tables.js';
import { sessionOptions, type DbScope } from './scope.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

// int8 (bigint identities, counts) as string keeps precision; the API layer converts where safe
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);
// a calendar day is a day, not a midnight in this process's time zone
pg.types.setTypeParser(pg.types.builtins.DATE, (v: string) => v);

export interface PoolSettings {
  /** whose rows the pool's sessions see (scope.ts): a process's pool serves code that spans tenants */
  scope: DbScope;
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/** How much longer than the server's statement timeout the client waits for an answer. */
const CLIENT_GRACE_MS = 1000;

export function createDb(url: string, settings: PoolSettings, onQuery?: (seconds: number) => void): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    idleTimeoutMillis: 30_000,
    application_name: 'kumo-control-plane',
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    query_timeout: settings.statementTimeoutMs + CLIENT_GRACE_MS,
    keepAlive: true,
    options: sessionOptions(settings.scope),
  });
  // an idle client losing its connection must not crash the process; the pool replaces it
  pool.on('error', () => {});
  return {
    db: new Kysely<Database>({
      dialect: new PostgresDialect({ pool }),
      // every query's duration, errors included, for kcp_db_query_duration_seconds
      ...(onQuery ? { log: (event: { queryDurationMillis: number }) => onQuery(event.queryDurationMillis / 1000) } : {}),
    }),
    pool,
  };
}

interface PgError {
  code?: string;
  constraint?: string;
  detail?: string;
  table?: string;
  column?: string;
  message?: string;
  errors?: unknown[];
}

/** Socket errors of a connection that could not be made or was lost. */
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/** What pg and pg-pool say when a connection could not be made, was lost, or stopped answering. */
const LOST = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed)/;

/**
 * SQLSTATEs (and driver failures) that mean PostgreSQL cannot serve the request now: connection
 * exceptions (class 08), shutdown and start-up (57P01-03), too many connections, and a statement
 * cancelled by statement_timeout (57014).
 */
function pgUnavailable(e: PgError): boolean {
  const code = e.code ?? '';
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '57014'].includes(code)) return true;
  if (NETWORK_ERRNOS.has(code)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => NETWORK_ERRNOS.has((x as PgError)?.code ?? ''))) return true;
  return typeof e.message === 'string' && LOST.test(e.message);
}

/**
 * The AppError a PostgreSQL (or pg driver) error stands for, or null when it is not one of these
 * (then it is a bug, and stays a 500). The one table from database failures to API errors.
 */
export function appErrorFromPg(e: unknown): AppError | null {
  if (e === null || typeof e !== 'object') return null;
  const pgErr = e as PgError;
  const context = { constraint: pgErr.constraint };
  switch (pgErr.code) {
    case '23505':
      return new AppError('CONFLICT', `already exists (${pgErr.constraint ?? 'unique constraint'})`, { context, cause: e });
    case '23P01':
      // an exclusion constraint (overlapping submission networks); which row it overlaps may belong
      // to another tenant, so it is not named
      return new AppError('CONFLICT', `overlaps an existing entry (${pgErr.constraint ?? 'exclusion constraint'})`, { context, cause: e });
    case '23503':
      return new AppError('CONFLICT', `still referenced, or refers to something missing (${pgErr.constraint ?? 'foreign key'})`, { context, cause: e });
    case '23514':
    case '23502':
      return new AppError('VALIDATION_FAILED', `rejected by the database (${pgErr.constraint ?? pgErr.column ?? pgErr.code})`, { context, cause: e });
    default:
  }
  // class 22, data exceptions: a value the database cannot store (a NUL byte, a number out of range,
  // an impossible date). The boundaries validate first; this is the backstop, never a 500.
  if (typeof pgErr.code === 'string' && pgErr.code.startsWith('22')) {
    return new AppError('VALIDATION_FAILED', `a value cannot be stored (${pgErr.column ?? `SQLSTATE ${pgErr.code}`})`, { context, cause: e });
  }
  // class 40, transaction rollback: PostgreSQL aborted this transaction for a concurrent one (a
  // deadlock, a serialization failure). Nothing was written, and the same request will go through.
  if (pgErr.code === '40P01' || pgErr.code === '40001') {
    return new AppError('DEPENDENCY_UNAVAILABLE', 'the database aborted the transaction against a concurrent one: try again', { context: { sqlstate: pgErr.code }, cause: e });
  }
  if (pgUnavailable(pgErr)) return new AppError('DEPENDENCY_UNAVAILABLE', 'PostgreSQL is unavailable: try again later', { cause: e });
  return null;
}

/** Throw the AppError a PostgreSQL error stands for; rethrow anything else as it is. */
export function translatePgError(e: unknown): never {
  throw appErrorFromPg(e) ?? e;
}

/**
 * Run `fn` in a transaction, translating constraint violations. Inside one already (a tenant-token
 * request runs in its scope's transaction) `fn` joins it.
 */
export async function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    if (db.isTransaction) return await fn(db as Tx);
    return await db.transaction().execute(fn);
  } catch (e) {
    if (e instanceof AppError) throw e;
    translatePgError(e);
  }
}
