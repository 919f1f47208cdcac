import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KEY_BYTES, open, seal } from './aead';
import { aad } from './aad';

export const generateKey = (): Buffer => randomBytes(KEY_BYTES);
export const generateDek = generateKey;

export const wrapDek = (kek: Uint8Array, dek: Uint8Array, userId: string, kv: number): Buffer => seal(kek, dek, aad.dekWrap(userId, kv));
export const unwrapDek = (kek: Uint8Array, wrapped: Uint8Array, userId: string, kv: number): Buffer =>
  open(kek, wrapped, aad.dekWrap(userId, kv));

export const KCV_BYTES = 16;

/** DEK check value: proves a recovered DEK is the right one without revealing it. */
export const dekCheckValue = (dek: Uint8Array): Buffer =>
  createHmac('sha256', dek).update('keyturn/kcv/v1').digest().subarray(0, KCV_BYTES);

export function dekMatchesCheckValue(dek: Uint8Array, kcv: Uint8Array): boolean {
  const mine = dekCheckValue(dek);
  return mine.length === kcv.length && timingSafeEqual(mine, kcv);
}

export const wrapForSession = (sessionKey: Uint8Array, dek: Uint8Array, sessionId: string, userId: string, kv: number): Buffer =>
  seal(sessionKey, dek, aad.sessionDek(sessionId, userId, kv));
export const unwrapForSession = (sessionKey: Uint8Array, wrapped: Uint8Array, sessionId: string, userId: string, kv: number): Buffer =>
  open(sessionKey, wrapped, aad.sessionDek(sessionId, userId, kv));
