import { createHash, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { IntegrityError, open, seal } from './aead';
import { aad } from './aad';

/**
 * The admin master key (AMK): an X25519 key pair. A DEK is escrowed to it with HPKE (RFC 9180,
 * base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM). `info` and `aad` both carry
 * the user and key version, so an A-DEK copied to another user or version fails to open.
 */
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const ADEK_FORMAT_V1 = 0x01;
const ENC_BYTES = 32;

export interface AmkKeyPair {
  publicKey: Buffer; // raw 32 bytes
  privateKey: Buffer; // raw 32 bytes; only ever held in one request's memory
}

export async function generateAmk(): Promise<AmkKeyPair> {
  const kp = await suite.kem.generateKeyPair();
  const publicKey = Buffer.from(await suite.kem.serializePublicKey(kp.publicKey));
  const privateKey = Buffer.from(await suite.kem.serializePrivateKey(kp.privateKey));
  return { publicKey, privateKey };
}

const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b);
/** Run fn on a private copy of secret bytes (the HPKE library takes Uint8Array views) and wipe the copy after. */
async function withCopy<T>(secret: Uint8Array, fn: (copy: Uint8Array) => Promise<T>): Promise<T> {
  const copy = u8(secret);
  try {
    return await fn(copy);
  } finally {
    copy.fill(0);
  }
}

/**
 * HPKE base-mode seal of secret bytes to an X25519 public key; `ctx` is both the HPKE info and
 * the AEAD associated data. Format: version byte | enc (32) | ciphertext+tag.
 */
export async function hpkeSeal(recipientPublic: Uint8Array, plaintext: Uint8Array, ctx: string): Promise<Buffer> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(u8(recipientPublic));
  const { enc, ct } = await withCopy(plaintext, (plain) => suite.seal({ recipientPublicKey, info: Buffer.from(ctx) }, plain, Buffer.from(ctx)));
  return Buffer.concat([Buffer.from([ADEK_FORMAT_V1]), Buffer.from(enc), Buffer.from(ct)]);
}

/** Open an `hpkeSeal` blob with the raw X25519 private key. Any failure is the generic IntegrityError. */
export async function hpkeOpen(recipientPrivate: Uint8Array, blob: Uint8Array, ctx: string): Promise<Buffer> {
  if (blob.length < 1 + ENC_BYTES + 16 || blob[0] !== ADEK_FORMAT_V1) throw new IntegrityError();
  try {
    const recipientKey = await withCopy(recipientPrivate, (copy) => suite.kem.deserializePrivateKey(copy));
    const pt = await suite.open(
      { recipientKey, enc: u8(blob.subarray(1, 1 + ENC_BYTES)), info: Buffer.from(ctx) },
      u8(blob.subarray(1 + ENC_BYTES)),
      Buffer.from(ctx),
    );
    return Buffer.from(pt);
  } catch {
    throw new IntegrityError();
  }
}

/**
 * An X25519 key pair derived deterministically from 32 secret bytes (RFC 9180 DeriveKeyPair):
 * the account-recovery key, re-derived from the requester's password (recovery.ts).
 */
export async function deriveX25519KeyPair(ikm: Uint8Array): Promise<AmkKeyPair> {
  const kp = await withCopy(ikm, (copy) => suite.kem.deriveKeyPair(copy));
  const publicKey = Buffer.from(await suite.kem.serializePublicKey(kp.publicKey));
  const privateKey = Buffer.from(await suite.kem.serializePrivateKey(kp.privateKey));
  return { publicKey, privateKey };
}

/** Seal a DEK to the AMK public key: the pending A-DEK. Needs no admin. */
export const sealPendingADek = (amkPublic: Uint8Array, dek: Uint8Array, userId: string, kv: number): Promise<Buffer> =>
  hpkeSeal(amkPublic, dek, aad.aDekPending(userId, kv));

/** Open a pending A-DEK with the AMK private key. Any failure is the generic IntegrityError. */
export const openPendingADek = (amkPrivate: Uint8Array, blob: Uint8Array, userId: string, kv: number): Promise<Buffer> =>
  hpkeOpen(amkPrivate, blob, aad.aDekPending(userId, kv));

/** The key that final A-DEKs are wrapped under; derivable only from the AMK private key. */
const finalWrapKey = (amkPrivate: Uint8Array): Buffer =>
  Buffer.from(hkdfSync('sha256', amkPrivate, Buffer.alloc(0), 'keyturn/adek-final-key/v1', 32));

export function sealFinalADek(amkPrivate: Uint8Array, dek: Uint8Array, userId: string, kv: number): Buffer {
  const k = finalWrapKey(amkPrivate);
  try {
    return seal(k, dek, aad.aDekFinal(userId, kv));
  } finally {
    k.fill(0);
  }
}

export function openFinalADek(amkPrivate: Uint8Array, blob: Uint8Array, userId: string, kv: number): Buffer {
  const k = finalWrapKey(amkPrivate);
  try {
    return open(k, blob, aad.aDekFinal(userId, kv));
  } finally {
    k.fill(0);
  }
}

/** Each admin holds the AMK private key wrapped under their own KEK. */
export const wrapAmkForAdmin = (kek: Uint8Array, amkPrivate: Uint8Array, adminId: string, amkId: string): Buffer =>
  seal(kek, amkPrivate, aad.amkWrap(adminId, amkId));
export const unwrapAmkForAdmin = (kek: Uint8Array, wrapped: Uint8Array, adminId: string, amkId: string): Buffer =>
  open(kek, wrapped, aad.amkWrap(adminId, amkId));

/** The X25519 public key of a private key (to check an admin's unwrapped AMK is the right one). */
export function amkPublicFromPrivate(amkPrivate: Uint8Array): Buffer {
  // The PKCS#8 wrapping is a copy of the private key: wiped once the key object is made.
  const pkcs8 = Buffer.concat([X25519_PKCS8_PREFIX, amkPrivate]);
  try {
    const pub = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    return Buffer.from(pub.export({ format: 'der', type: 'spki' }).subarray(-32));
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * What operators compare to know the AMK public key is the one they set up: SHA-256 of the raw
 * key, 128 bits shown as eight groups of four hex digits (the health page, status, audit events).
 */
export function amkFingerprint(publicKey: Uint8Array): string {
  const h = createHash('sha256').update('keyturn/amk-fingerprint/v1|').update(publicKey).digest('hex').slice(0, 32);
  return h.match(/.{4}/g)!.join(' ');
}
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
