/** The Redis connection (shared with the KumoMTA nodes' throttles). Commands fail fast when it is down. */
import { Redis } from 'ioredis';

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
