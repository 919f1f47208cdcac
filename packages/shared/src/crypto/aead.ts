import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a self-describing blob: [format 0x01][nonce 12][ciphertext][tag 16].
 * The format byte and the caller's associated data (AAD) are both authenticated, so a blob
 * moved to another row, user, key version or purpose fails to open.
 */
export const BLOB_FORMAT_V1 = 0x01;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const HEADER = Buffer.from([BLOB_FORMAT_V1]);

/** One generic error for every failure to open: wrong key, wrong AAD, tampering, bad format. */
export class IntegrityError extends Error {
  constructor() {
    super('ciphertext failed its integrity check');
    this.name = 'IntegrityError';
  }
}

function assertKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new TypeError('AES-256-GCM needs a 32-byte key');
}

function assertAad(aad: string): void {
  if (typeof aad !== 'string' || aad.length === 0) throw new TypeError('associated data is required');
}

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Buffer {
  assertKey(key);
  assertAad(aad);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([HEADER, Buffer.from(aad, 'utf8')]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([HEADER, nonce, ct, cipher.getAuthTag()]);
}

export function open(key: Uint8Array, blob: Uint8Array, aad: string): Buffer {
  assertKey(key);
  assertAad(aad);
  if (blob.length < 1 + NONCE_BYTES + TAG_BYTES || blob[0] !== BLOB_FORMAT_V1) throw new IntegrityError();
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const nonce = b.subarray(1, 1 + NONCE_BYTES);
  const tag = b.subarray(b.length - TAG_BYTES);
  const ct = b.subarray(1 + NONCE_BYTES, b.length - TAG_BYTES);
  try {
    // authTagLength pins the tag to 16 bytes: a truncated tag can never be accepted.
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.concat([HEADER, Buffer.from(aad, 'utf8')]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new IntegrityError();
  }
}

export const sealText = (key: Uint8Array, text: string, aad: string): Buffer => seal(key, Buffer.from(text, 'utf8'), aad);
export const openText = (key: Uint8Array, blob: Uint8Array, aad: string): string => open(key, blob, aad).toString('utf8');

/** Best effort: overwrite key material we own once it is no longer needed. */
export function wipe(...bufs: (Uint8Array | null | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
