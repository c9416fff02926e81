/**
 * What the connection says about the client: its address (the unit token-authentication failures
 * are counted in) and, over HTTPS, the client certificate it presented and whether the configured
 * client CA verified it. A request the app is handed in-process (tests) has no connection: its
 * address is `unknown` and it has no certificate.
 */
import type { Context } from 'hono';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { clientKey } from '../domain/access/client-key.js';
import type { HonoEnv } from './env.js';

const socketOf = (c: Context<HonoEnv>): Socket | null => (c.env as HonoEnv['Bindings'] | undefined)?.incoming?.socket ?? null;

/** The client the token-authentication failure counter is kept for. */
export const clientOf = (c: Context<HonoEnv>): string => clientKey(socketOf(c)?.remoteAddress);

export type ClientCertificate =
  | { state: 'none' }
  | { state: 'unverified'; reason: string }
  | { state: 'verified'; names: string[]; subject: string; fingerprint256: string };

/** The client certificate of this request's TLS connection and its verification against the client CA. */
export function clientCertificate(c: Context<HonoEnv>): ClientCertificate {
  const s = socketOf(c) as TLSSocket | null;
  if (!s || !(s as { encrypted?: boolean }).encrypted) return { state: 'none' };
  const cert: PeerCertificate | Record<string, never> = s.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { state: 'none' };
  if (!s.authorized) return { state: 'unverified', reason: String(s.authorizationError ?? 'not verified') };
  const names = new Set<string>();
  const cn = cert.subject?.CN;
  for (const n of Array.isArray(cn) ? cn : cn ? [cn] : []) names.add(n);
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) if (part.startsWith('DNS:')) names.add(part.slice(4));
  return { state: 'verified', names: [...names], subject: Array.isArray(cn) ? cn.join(',') : (cn ?? ''), fingerprint256: cert.fingerprint256 };
}
