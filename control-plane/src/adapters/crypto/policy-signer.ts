/**
 * Ed25519 signatures over node policy modules. Nodes pin the public key in their bootstrap and refuse
 * any module whose signature does not verify, so a compromised transport or a node token that leaked
 * cannot put policy on a node.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

// PKCS#8 and SPKI wrappers of a bare Ed25519 key (RFC 8410)
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class PolicySigner {
  private readonly key: KeyObject;
  readonly publicKeyRaw: Buffer;

  constructor(seed: Buffer) {
    if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
    this.key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(this.key).export({ type: 'spki', format: 'der' });
    this.publicKeyRaw = spki.subarray(spki.length - 32);
  }

  sign(text: string): string {
    return sign(null, Buffer.from(text, 'utf8'), this.key).toString('base64');
  }
}

export function verifyPolicySignature(publicKeyRaw: Buffer, text: string, signatureB64: string): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKeyRaw]), format: 'der', type: 'spki' });
  return verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signatureB64, 'base64'));
}
