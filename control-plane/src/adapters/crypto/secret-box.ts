/**
 * Secrets at rest (DKIM private keys) sealed with AES-256-GCM under a keyring of master keys.
 * The first key seals; every key opens, so operators rotate by prepending a new key, restarting
 * replicas one at a time, and letting the worker re-seal old rows (app/jobs/rekey-dkim.ts).
 * The row's id is bound in as associated data: a ciphertext copied onto another row does not open.
 *
 * Layout: version(1)=0x01 | iv(12) | tag(16) | ciphertext. The key id is stored in its own column.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { MasterKey } from '../../config/config.js';
import { AppError } from '../../domain/shared/errors.js';

const VERSION = 0x01;

export interface Sealed {
  keyId: string;
  box: Buffer;
}

export class SecretBox {
  private readonly byId: Map<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: MasterKey[]) {
    if (keys.length === 0) throw new Error('SecretBox needs at least one master key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    this.currentKeyId = keys[0]!.id;
  }

  seal(plaintext: Buffer, associatedData: string): Sealed {
    const key = this.byId.get(this.currentKeyId)!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyId: this.currentKeyId, box: Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ct]) };
  }

  open(sealed: Sealed, associatedData: string): Buffer {
    const key = this.byId.get(sealed.keyId);
    if (!key) {
      throw new AppError('INTERNAL', `secret sealed under master key ${sealed.keyId}, which is not in CP_MASTER_KEYS`);
    }
    const { box } = sealed;
    if (box.length < 29 || box[0] !== VERSION) throw new AppError('INTERNAL', 'sealed secret has an unknown layout');
    const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(1, 13));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(box.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(box.subarray(29)), decipher.final()]);
    } catch (cause) {
      throw new AppError('INTERNAL', 'sealed secret failed authentication (tampered, or bound to another row)', { cause });
    }
  }

  needsReseal(keyId: string): boolean {
    return keyId !== this.currentKeyId;
  }
}
