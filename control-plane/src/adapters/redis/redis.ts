/** The Redis connection (shared with the KumoMTA nodes' throttles). Commands fail fast when it is down. */
import { Redis } from 'ioredis';
import { AppError } from '../../domain/shared/errors.js';

export type { Redis };

export function createRedis(url: string): Redis {
  return new Redis(url, {
    // a gateway must answer "try later" quickly rather than queue commands while Redis is away
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/** What ioredis says when a command cannot reach Redis (offline queue off, so it says it at once). */
const UNREACHABLE = /^(Stream isn't writeable|Connection is closed|Command timed out|Reached the max retries per request limit)/;

/** The AppError a Redis failure stands for (503), or null when the error is something else. */
export function appErrorFromRedis(e: unknown): AppError | null {
  const err = e as { name?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return null;
  if (err.name === 'MaxRetriesPerRequestError' || (typeof err.message === 'string' && UNREACHABLE.test(err.message))) {
    return new AppError('DEPENDENCY_UNAVAILABLE', 'Redis is unavailable: try again later', { cause: e });
  }
  return null;
}
