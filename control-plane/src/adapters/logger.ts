/**
 * Structured logs (pino). Secrets never reach a log line: the redact list covers the places they
 * could appear (headers, bodies of token/credential endpoints, connection URLs).
 */
import { pino, destination as pinoDestination, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'password',
  'secret',
  '*.token',
  '*.password',
  '*.secret',
  'databaseUrl',
  'redisUrl',
  'privateKeyPem',
];

/**
 * Without a destination, logs go to stdout asynchronously: lines written while a write is in flight
 * leave together in the next one, so a busy gateway does not pay a system call per line. The rest is
 * flushed at shutdown.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'kumo-control-plane' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pinoDestination({ dest: 1, sync: false }),
  );
}
