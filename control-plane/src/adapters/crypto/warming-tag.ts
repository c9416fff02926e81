/**
 * The tag in a warming Message-ID and the warming agent's gateway password, both keyed hashes of the
 * pseudonym key (which never changes), so the platform recognises its own warming mail years later
 * and nobody else can make a message look like one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const warmingTag = (key: Buffer, sendId: string): string => createHmac('sha256', key).update(`warming-tag:${sendId}`).digest('hex').slice(0, 16);

export function isWarmingTag(key: Buffer, sendId: string, tag: string): boolean {
  const want = Buffer.from(warmingTag(key, sendId));
  const got = Buffer.from(tag);
  return want.length === got.length && timingSafeEqual(want, got);
}

export const WARMING_AGENT_USER = 'kcp-warming-agent';
export const warmingAgentPassword = (key: Buffer): string => createHmac('sha256', key).update('warming-agent-password').digest('base64url');
