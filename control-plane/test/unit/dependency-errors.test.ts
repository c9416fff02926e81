/**
 * The one table from database and Redis failures to API errors: an outage is 503, a value PostgreSQL
 * cannot store is 400, a constraint is 400 or 409, anything else stays a bug (null, then 500).
 */
import { describe, expect, it } from 'vitest';
import { appErrorFromPg } from '../../src/adapters/pg/database.js';
import { appErrorFromRedis } from '../../src/adapters/redis/redis.js';

const err = (message: string, fields: Record<string, unknown> = {}) => Object.assign(new Error(message), fields);

describe('PostgreSQL errors', () => {
  it.each<[string, unknown, string | null]>([
    ['connection refused', err('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED' }), 'DEPENDENCY_UNAVAILABLE'],
    ['refused on both address families', Object.assign(new AggregateError([err('a', { code: 'ECONNREFUSED' })], ''), {}), 'DEPENDENCY_UNAVAILABLE'],
    ['no pooled connection in time', err('timeout exceeded when trying to connect'), 'DEPENDENCY_UNAVAILABLE'],
    ['a connection that timed out connecting', err('Connection terminated due to connection timeout'), 'DEPENDENCY_UNAVAILABLE'],
    ['a server that stopped answering', err('Query read timeout'), 'DEPENDENCY_UNAVAILABLE'],
    ['a connection lost', err('Connection terminated unexpectedly'), 'DEPENDENCY_UNAVAILABLE'],
    ['statement_timeout', err('canceling statement due to statement timeout', { code: '57014' }), 'DEPENDENCY_UNAVAILABLE'],
    ['the server shutting down', err('terminating connection due to administrator command', { code: '57P01' }), 'DEPENDENCY_UNAVAILABLE'],
    ['the server starting', err('the database system is starting up', { code: '57P03' }), 'DEPENDENCY_UNAVAILABLE'],
    ['too many connections', err('sorry, too many clients already', { code: '53300' }), 'DEPENDENCY_UNAVAILABLE'],
    ['a deadlock', err('deadlock detected', { code: '40P01' }), 'DEPENDENCY_UNAVAILABLE'],
    ['a serialization failure', err('could not serialize access due to concurrent update', { code: '40001' }), 'DEPENDENCY_UNAVAILABLE'],
    ['a NUL byte', err('invalid byte sequence for encoding "UTF8": 0x00', { code: '22021' }), 'VALIDATION_FAILED'],
    ['a number out of range', err('value "99999999999" is out of range for type integer', { code: '22003' }), 'VALIDATION_FAILED'],
    ['a check constraint', err('violates check constraint', { code: '23514', constraint: 'x_check' }), 'VALIDATION_FAILED'],
    ['a unique violation', err('duplicate key', { code: '23505', constraint: 'x_key' }), 'CONFLICT'],
    ['a syntax error (our bug)', err('syntax error at or near', { code: '42601' }), null],
    ['a plain bug', new TypeError('x is undefined'), null],
  ])('%s', (_n, e, code) => {
    expect(appErrorFromPg(e)?.code ?? null).toBe(code);
  });

  it('names no host, port or password in what the client sees', () => {
    const e = appErrorFromPg(err('connect ECONNREFUSED 10.1.2.3:5432', { code: 'ECONNREFUSED' }))!;
    expect(e.detail).not.toMatch(/10\.1\.2\.3|5432/);
  });
});

describe('Redis errors', () => {
  it.each<[string, unknown, string | null]>([
    ['offline queue off, not connected', err("Stream isn't writeable and enableOfflineQueue options is false"), 'DEPENDENCY_UNAVAILABLE'],
    ['the connection closed', err('Connection is closed.'), 'DEPENDENCY_UNAVAILABLE'],
    ['retries exhausted', Object.assign(err('Reached the max retries per request limit (which is 1).'), { name: 'MaxRetriesPerRequestError' }), 'DEPENDENCY_UNAVAILABLE'],
    ['a command error (our bug)', err('ERR wrong number of arguments'), null],
  ])('%s', (_n, e, code) => {
    expect(appErrorFromRedis(e)?.code ?? null).toBe(code);
  });
});
