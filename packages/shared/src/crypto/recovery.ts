import { hkdfSync } from 'node:crypto';
import { wipe } from './aead';
import { aad } from './aad';
import { deriveX25519KeyPair, hpkeOpen, hpkeSeal } from './amk';
import { fingerprint } from './fingerprint';
import { deriveMaster, type KdfParams } from './kdf';

/**
 * Account recovery (apps/api/src/modules/recovery/README.md): the requester's new password
 * yields an X25519 key pair; only its public key is stored. An admin seals the user's DEK (and,
 * for an admin's recovery, the AMK private key) to it; the completion re-derives the private key
 * from the same password and the request's salt.
 */
export interface RecoveryKeyPair {
  publicKey: Buffer;
  /** Only ever in one request's memory; the caller wipes it. */
  privateKey: Buffer;
}

export async function deriveRecoveryKeyPair(password: string, salt: Uint8Array, params: KdfParams): Promise<RecoveryKeyPair> {
  const master = await deriveMaster(password, salt, params);
  const seed = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'keyturn/recovery-key/v1', 32));
  try {
    return await deriveX25519KeyPair(seed);
  } finally {
    wipe(master, seed);
  }
}

/** Five words over the request id and its public key: what the requester reads to the admin. */
export const recoveryFingerprint = (requestId: string, publicKey: Uint8Array): string =>
  fingerprint(`recovery|${requestId}|${Buffer.from(publicKey).toString('hex')}`, 5);

export const sealRecoveryDek = (recoveryPublic: Uint8Array, dek: Uint8Array, userId: string, requestId: string, kv: number) =>
  hpkeSeal(recoveryPublic, dek, aad.recoveryDek(userId, requestId, kv));
export const openRecoveryDek = (recoveryPrivate: Uint8Array, blob: Uint8Array, userId: string, requestId: string, kv: number) =>
  hpkeOpen(recoveryPrivate, blob, aad.recoveryDek(userId, requestId, kv));

export const sealRecoveryAmk = (recoveryPublic: Uint8Array, amkPrivate: Uint8Array, adminId: string, requestId: string, amkId: string) =>
  hpkeSeal(recoveryPublic, amkPrivate, aad.recoveryAmk(adminId, requestId, amkId));
export const openRecoveryAmk = (recoveryPrivate: Uint8Array, blob: Uint8Array, adminId: string, requestId: string, amkId: string) =>
  hpkeOpen(recoveryPrivate, blob, aad.recoveryAmk(adminId, requestId, amkId));
