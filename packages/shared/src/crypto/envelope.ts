import { randomBytes } from 'node:crypto';
import { IntegrityError, wipe } from './aead';
import { sealPendingADek } from './amk';
import { dekCheckValue, dekMatchesCheckValue, generateDek, unwrapDek, wrapDek } from './dek';
import { derivePasswordKeys, hashVerifier, type KdfParams, SALT_BYTES, verifierMatches } from './kdf';

/** What a user's key row stores for one key version (DESIGN §2). No plaintext key among it. */
export interface KeyMaterial {
  keyVersion: number;
  kdfSalt: Buffer;
  kdfParams: KdfParams;
  authHash: Buffer;
  wrappedDek: Buffer;
  dekKcv: Buffer;
  adekPending: Buffer | null;
}

export interface NewKeyMaterialInput {
  userId: string;
  password: string;
  keyVersion: number;
  kdf: KdfParams;
  /** The AMK public key: with it the pending A-DEK is written at once (escrow never missing). */
  amkPublic: Buffer | null;
  /** Re-wrap this DEK instead of making a new one (e.g. an admin's keys at setup). */
  dek?: Buffer;
}

/**
 * Derive everything a password yields (one argon2id run, new 16-byte salt every time), make or
 * take a DEK, and seal it under the KEK, into a check value and to the AMK.
 */
export async function newKeyMaterial(input: NewKeyMaterialInput): Promise<{ material: KeyMaterial; dek: Buffer; kek: Buffer }> {
  const salt = randomBytes(SALT_BYTES);
  const { verifier, kek } = await derivePasswordKeys(input.password, salt, input.kdf);
  const dek = input.dek ?? generateDek();
  const material: KeyMaterial = {
    keyVersion: input.keyVersion,
    kdfSalt: salt,
    kdfParams: input.kdf,
    authHash: hashVerifier(verifier),
    wrappedDek: wrapDek(kek, dek, input.userId, input.keyVersion),
    dekKcv: dekCheckValue(dek),
    adekPending: input.amkPublic ? await sealPendingADek(input.amkPublic, dek, input.userId, input.keyVersion) : null,
  };
  wipe(verifier);
  return { material, dek, kek };
}

export type UnlockResult = { ok: true; dek: Buffer; kek: Buffer } | { ok: false; reason: 'WRONG_PASSWORD' | 'KEY_CHECK_FAILED' };

/**
 * Check a password against a key row and, if right, recover the DEK and prove it with the check
 * value. A wrong password and a corrupted wrap are told apart, so a damaged row is never
 * mistaken for a typo (RELIABILITY D5).
 */
export async function unlockKeyMaterial(
  userId: string,
  password: string,
  row: Pick<KeyMaterial, 'keyVersion' | 'kdfSalt' | 'kdfParams' | 'authHash' | 'wrappedDek' | 'dekKcv'>,
): Promise<UnlockResult> {
  const { verifier, kek } = await derivePasswordKeys(password, row.kdfSalt, row.kdfParams);
  const match = verifierMatches(verifier, row.authHash);
  wipe(verifier);
  if (!match) {
    wipe(kek);
    return { ok: false, reason: 'WRONG_PASSWORD' };
  }
  let dek: Buffer;
  try {
    dek = unwrapDek(kek, row.wrappedDek, userId, row.keyVersion);
  } catch (e) {
    wipe(kek);
    if (e instanceof IntegrityError) return { ok: false, reason: 'KEY_CHECK_FAILED' };
    throw e;
  }
  if (!dekMatchesCheckValue(dek, row.dekKcv)) {
    wipe(kek, dek);
    return { ok: false, reason: 'KEY_CHECK_FAILED' };
  }
  return { ok: true, dek, kek };
}
