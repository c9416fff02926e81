import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from './secret-box.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { issueToken, randomBase62, sha256 } from './tokens.js';
import { generateDkimKeyPair } from './dkim-keys.js';
import { AppError } from '../../domain/shared/errors.js';

const k = (n: number) => ({ id: `k${n}`, key: Buffer.alloc(32, n) });

describe('SecretBox', () => {
  it('round-trips, and opens old ciphertexts after a rotation', () => {
    const old = new SecretBox([k(1)]);
    const sealed = old.seal(Buffer.from('private key'), 'row-1');
    expect(sealed.keyId).toBe('k1');
    expect(sealed.box.includes(Buffer.from('private key'))).toBe(false);
    const rotated = new SecretBox([k(2), k(1)]);
    expect(rotated.open(sealed, 'row-1').toString()).toBe('private key');
    expect(rotated.needsReseal(sealed.keyId)).toBe(true);
    expect(rotated.seal(Buffer.from('x'), 'r').keyId).toBe('k2');
  });

  it('refuses a ciphertext moved to another row, tampered with, or under a dropped key', () => {
    const box = new SecretBox([k(1)]);
    const sealed = box.seal(Buffer.from('secret'), 'row-1');
    expect(() => box.open(sealed, 'row-2')).toThrow(AppError);
    const tampered = Buffer.from(sealed.box);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => box.open({ ...sealed, box: tampered }, 'row-1')).toThrow(/authentication/);
    expect(() => new SecretBox([k(3)]).open(sealed, 'row-1')).toThrow(/not in CP_MASTER_KEYS/);
  });

  it('uses a fresh IV each time', () => {
    const box = new SecretBox([k(1)]);
    expect(box.seal(Buffer.from('same'), 'r').box.equals(box.seal(Buffer.from('same'), 'r').box)).toBe(false);
  });
});

describe('password hashing', () => {
  it('verifies the right password only, and stores no plaintext', async () => {
    const stored = await hashPassword('correct horse', { ln: 10, r: 8, p: 1 });
    expect(stored).toMatch(/^scrypt\$ln=10,r=8,p=1\$/);
    expect(stored).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', stored)).toBe(true);
    expect(await verifyPassword('correct horsf', stored)).toBe(false);
    expect(await verifyPassword('correct horse', 'garbage')).toBe(false);
  });

  it('salts: the same password hashes differently', async () => {
    expect(await hashPassword('pw', { ln: 10, r: 8, p: 1 })).not.toBe(await hashPassword('pw', { ln: 10, r: 8, p: 1 }));
  });
});

describe('tokens', () => {
  it('are prefixed, long, base62, and identified by a prefix of 6 characters', () => {
    const t = issueToken('kcp');
    expect(t.token).toMatch(/^kcp_[0-9A-Za-z]{40}$/);
    expect(t.prefix).toBe(t.token.slice(0, 10));
    expect(t.sha256.equals(sha256(t.token))).toBe(true);
  });

  it('draw every base62 character', () => {
    expect(new Set(randomBase62(20000)).size).toBe(62);
  });
});

describe('DKIM key generation', () => {
  it('rsa: the DNS public key matches the private key', async () => {
    const pair = await generateDkimKeyPair('rsa-sha256', 1024);
    const pub = createPublicKey({ key: Buffer.from(pair.publicKeyDns, 'base64'), format: 'der', type: 'spki' });
    const sig = sign('sha256', Buffer.from('msg'), createPrivateKey(pair.privateKeyPem));
    expect(verify('sha256', Buffer.from('msg'), pub, sig)).toBe(true);
  });

  it('ed25519: p= is the bare 32-byte key (RFC 8463)', async () => {
    const pair = await generateDkimKeyPair('ed25519-sha256', 2048);
    const raw = Buffer.from(pair.publicKeyDns, 'base64');
    expect(raw.length).toBe(32);
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
    const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const sig = sign(null, Buffer.from('msg'), createPrivateKey(pair.privateKeyPem));
    expect(verify(null, Buffer.from('msg'), pub, sig)).toBe(true);
  });
});
