import { createHash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { hashRaw } from '@node-rs/argon2';

// @node-rs/argon2's Algorithm is an ambient const enum; 2 is Argon2id.
const ARGON2ID = 2;

/** argon2id parameters, stored beside each key version. m in KiB. */
export interface KdfParams {
  alg: 'argon2id';
  m: number;
  t: number;
  p: number;
}

/** OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 is the recommended minimum. */
export const DEFAULT_KDF_PARAMS: KdfParams = { alg: 'argon2id', m: 19_456, t: 2, p: 1 };
/** The OWASP table's equivalent settings all have m ≥ 7 MiB and m·t ≥ 35,840 KiB. */
export const KDF_FLOOR = { m: 7_168, mTimesT: 35_840 } as const;
/** Refuse stored parameters that would let a tampered row burn the server's memory or CPU. */
export const KDF_CEILING = { m: 262_144, t: 10, p: 8 } as const;
export const SALT_BYTES = 16;

export class KdfParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KdfParamsError';
  }
}

export function assertKdfParams(p: KdfParams): void {
  const ints = [p.m, p.t, p.p].every((n) => Number.isSafeInteger(n) && n > 0);
  if (p.alg !== 'argon2id' || !ints) throw new KdfParamsError('unsupported key-derivation parameters');
  if (p.m < KDF_FLOOR.m || p.m * p.t < KDF_FLOOR.mTimesT) throw new KdfParamsError('key-derivation parameters below the OWASP floor');
  if (p.m > KDF_CEILING.m || p.t > KDF_CEILING.t || p.p > KDF_CEILING.p) throw new KdfParamsError('key-derivation parameters above the ceiling');
}

/**
 * The password master key: argon2id over the password's exact UTF-8 bytes. @node-rs/argon2
 * runs on the libuv thread pool, so the event loop keeps serving while it works.
 */
export async function deriveMaster(password: string, salt: Uint8Array, params: KdfParams): Promise<Buffer> {
  assertKdfParams(params);
  if (salt.length < SALT_BYTES) throw new KdfParamsError('salt too short');
  const out = await hashRaw(Buffer.from(password, 'utf8'), {
    algorithm: ARGON2ID,
    memoryCost: params.m,
    timeCost: params.t,
    parallelism: params.p,
    outputLen: 32,
    salt: Buffer.from(salt),
  });
  return Buffer.from(out);
}

const hkdf = (ikm: Uint8Array, info: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), info, 32));

export const deriveAuthVerifier = (master: Uint8Array): Buffer => hkdf(master, 'keyturn/auth/v1');
export const deriveKek = (master: Uint8Array): Buffer => hkdf(master, 'keyturn/kek/v1');

/** What the database keeps of the auth verifier: its SHA-256, never the verifier itself. */
export const hashVerifier = (verifier: Uint8Array): Buffer => createHash('sha256').update(verifier).digest();

export function verifierMatches(verifier: Uint8Array, storedHash: Uint8Array): boolean {
  const h = hashVerifier(verifier);
  return h.length === storedHash.length && timingSafeEqual(h, storedHash);
}

/** Everything a password yields, in one derivation. */
export async function derivePasswordKeys(password: string, salt: Uint8Array, params: KdfParams) {
  const master = await deriveMaster(password, salt, params);
  try {
    return { verifier: deriveAuthVerifier(master), kek: deriveKek(master) };
  } finally {
    master.fill(0);
  }
}
