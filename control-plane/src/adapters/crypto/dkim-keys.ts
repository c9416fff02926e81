/** DKIM key pairs. RSA for reach (every receiver verifies it); Ed25519 (RFC 8463) as an option. */
import { generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPair = promisify(generateKeyPairCb);

export interface DkimKeyPair {
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** base64 of the DER SubjectPublicKeyInfo (rsa) or of the raw 32-byte key (ed25519), as DNS wants it */
  publicKeyDns: string;
  /** PKCS#8 PEM, as KumoMTA's kumo.dkim signers read it from a file */
  privateKeyPem: string;
}

export async function generateDkimKeyPair(algorithm: DkimKeyPair['algorithm'], rsaBits: number): Promise<DkimKeyPair> {
  if (algorithm === 'rsa-sha256') {
    const { publicKey, privateKey } = await generateKeyPair('rsa', { modulusLength: rsaBits, publicExponent: 0x10001 });
    return {
      algorithm,
      publicKeyDns: (publicKey as KeyObject).export({ type: 'spki', format: 'der' }).toString('base64'),
      privateKeyPem: (privateKey as KeyObject).export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }
  const { publicKey, privateKey } = await generateKeyPair('ed25519');
  // RFC 8463: the p= tag carries the bare 32-byte key, i.e. the SPKI DER without its 12-byte header
  const spki = (publicKey as KeyObject).export({ type: 'spki', format: 'der' });
  return {
    algorithm,
    publicKeyDns: spki.subarray(spki.length - 32).toString('base64'),
    privateKeyPem: (privateKey as KeyObject).export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
