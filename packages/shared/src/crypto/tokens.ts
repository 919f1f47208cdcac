import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Crockford base32: no I, L, O, U, so what a person reads back is unambiguous. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export const TEMP_PASSWORD_BYTES = 20; // 160 bits

/** A temporary password: 160 CSPRNG bits as 32 Crockford characters in groups of four. */
export function generateTempPassword(): string {
  return base32(randomBytes(TEMP_PASSWORD_BYTES)).match(/.{4}/g)!.join('-');
}

/** What a person may type back (temporary passwords, setup codes): case, dashes, spaces and look-alike letters do not matter. */
export function normalizeTempPassword(input: string): string {
  return input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
}

/**
 * The stored form: SHA-256 bound to the token id. With 160 bits of entropy a fast hash is
 * enough (NIST/ASVS: ≥112 bits under an approved hash), and the binding means a temporary
 * password can never be used against another token.
 */
export const hashTempPassword = (tokenId: string, tempPassword: string): Buffer =>
  createHash('sha256').update(`keyturn/temp-password/v1|token=${tokenId}|`).update(normalizeTempPassword(tempPassword)).digest();

export function tempPasswordMatches(tokenId: string, input: string, storedHash: Uint8Array): boolean {
  const h = hashTempPassword(tokenId, input);
  return h.length === storedHash.length && timingSafeEqual(h, storedHash);
}

/**
 * A one-time setup code: a secret, so ≥ 128 bits (RELIABILITY D9). 160 bits is a whole number of
 * base32 characters (32) and of groups of four, so no character is silently dropped by the grouping.
 */
export const SETUP_CODE_BYTES = 20;
export const generateSetupCode = (): string => base32(randomBytes(SETUP_CODE_BYTES)).match(/.{4}/g)!.join('-');

/**
 * A setup code given by the operator (SETUP_CODE): entropy cannot be measured, so the rule is a
 * floor that a random code of it carries ≥ 128 bits: at least 32 characters of 0–9 and A–Z once
 * normalized (32 random hex digits are 128 bits: `openssl rand -hex 16`), at least 10 of them
 * different (refusing AAAA… and 0123…-style fillers of the length).
 */
export const SETUP_CODE_MIN_CHARS = 32;
export function setupCodeStrongEnough(code: string): boolean {
  const n = normalizeTempPassword(code);
  return /^[0-9A-Z]+$/.test(n) && n.length >= SETUP_CODE_MIN_CHARS && new Set(n).size >= 10;
}

/** The stored form of a setup code: SHA-256 of it normalized like a temporary password (case, dashes and spaces do not matter). */
export const hashSetupCode = (code: string): string => sha256Hex(`keyturn/setup-code/v1|${normalizeTempPassword(code)}`);

export const sha256Hex = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

export function constantTimeEqualStrings(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
