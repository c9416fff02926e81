/**
 * Bearer secrets (operator/tenant API tokens, node tokens, SMTP passwords): 40 base62 characters,
 * about 238 bits, behind a type prefix so a leaked token is recognisable in a secret scanner.
 * Only their SHA-256 is stored; the `prefix` (type + first 6 characters) identifies a token in lists.
 */
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export type TokenKind = 'kcp' | 'kct' | 'node';

export interface IssuedToken {
  token: string;
  prefix: string;
  sha256: Buffer;
}

export function issueToken(kind: TokenKind): IssuedToken {
  const token = `${kind}_${randomBase62(40)}`;
  return { token, prefix: token.slice(0, kind.length + 7), sha256: sha256(token) };
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
