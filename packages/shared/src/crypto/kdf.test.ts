import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { hashRaw } from '@node-rs/argon2';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_KDF_PARAMS,
  KDF_CEILING,
  KDF_FLOOR,
  type KdfParams,
  KdfParamsError,
  SALT_BYTES,
  assertKdfParams,
  deriveAuthVerifier,
  deriveKek,
  deriveMaster,
  derivePasswordKeys,
  hashVerifier,
  verifierMatches,
} from './kdf';

// Wrap the real argon2 in a spy, so the tests can prove refused parameters never reach it.
vi.mock('@node-rs/argon2', async (importOriginal) => {
  const real = await importOriginal<typeof import('@node-rs/argon2')>();
  return { ...real, hashRaw: vi.fn(real.hashRaw) };
});
const hashRawSpy = vi.mocked(hashRaw);

const params = (m: number, t: number, p = 1): KdfParams => ({ alg: 'argon2id', m, t, p });
const SALT = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

describe('HKDF-SHA256 primitive (RFC 5869 known answers through node:crypto)', () => {
  it('test case 1', () => {
    const okm = hkdfSync(
      'sha256',
      Buffer.alloc(22, 0x0b),
      Buffer.from('000102030405060708090a0b0c', 'hex'),
      Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex'),
      42,
    );
    expect(Buffer.from(okm).toString('hex')).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  it('test case 3 (empty salt and info, the shape deriveKek uses)', () => {
    const okm = hkdfSync('sha256', Buffer.alloc(22, 0x0b), Buffer.alloc(0), Buffer.alloc(0), 42);
    expect(Buffer.from(okm).toString('hex')).toBe(
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });
});

describe('assertKdfParams (RELIABILITY D4)', () => {
  it('accepts the defaults, which are the OWASP recommendation m=19 MiB, t=2, p=1', () => {
    expect(DEFAULT_KDF_PARAMS).toEqual({ alg: 'argon2id', m: 19_456, t: 2, p: 1 });
    expect(() => assertKdfParams(DEFAULT_KDF_PARAMS)).not.toThrow();
  });

  it.each([
    [47_104, 1],
    [19_456, 2],
    [12_288, 3],
    [9_216, 4],
    [7_168, 5],
  ])('accepts the OWASP equivalent m=%i KiB, t=%i', (m, t) => {
    expect(() => assertKdfParams(params(m, t))).not.toThrow();
  });

  it('accepts the ceiling itself', () => {
    expect(() => assertKdfParams(params(KDF_CEILING.m, KDF_CEILING.t, KDF_CEILING.p))).not.toThrow();
  });

  it.each([
    ['m=8, t=1 (tampered, far below the floor)', params(8, 1)],
    ['m=4 GiB (4194304 KiB, tampered, far above the ceiling)', params(4_194_304, 2)],
    ['m one below the 7 MiB floor, even with many passes', params(KDF_FLOOR.m - 1, 10)],
    ['m=7168, t=4 (m·t below 35840)', params(7_168, 4)],
    ['m=12288, t=2 (m·t below 35840)', params(12_288, 2)],
    ['m one above the ceiling', params(KDF_CEILING.m + 1, 1)],
    ['t above the ceiling', params(19_456, KDF_CEILING.t + 1)],
    ['p above the ceiling', params(19_456, 2, KDF_CEILING.p + 1)],
    ['t=0', params(19_456, 0)],
    ['p=0', params(19_456, 2, 0)],
    ['negative m', params(-19_456, 2)],
    ['fractional t', params(19_456, 2.5)],
    ['NaN m', params(Number.NaN, 2)],
    ['Infinity t', params(19_456, Number.POSITIVE_INFINITY)],
    ['argon2i', { alg: 'argon2i', m: 19_456, t: 2, p: 1 } as unknown as KdfParams],
    ['a string m from a tampered JSON row', { alg: 'argon2id', m: '19456', t: 2, p: 1 } as unknown as KdfParams],
  ])('refuses %s', (_label, p) => {
    expect(() => assertKdfParams(p)).toThrow(KdfParamsError);
  });
});

describe('deriveMaster (argon2id)', () => {
  const fast = params(7_168, 5); // the cheapest accepted setting keeps the suite quick
  let reference: Buffer;

  beforeAll(async () => {
    reference = await deriveMaster('correct horse battery staple', SALT, fast);
  });
  beforeEach(() => {
    hashRawSpy.mockClear();
  });

  it('gives 32 bytes, deterministic for the same password, salt and parameters', async () => {
    expect(reference.length).toBe(32);
    expect((await deriveMaster('correct horse battery staple', SALT, fast)).equals(reference)).toBe(true);
  });

  it('calls argon2id (algorithm 2) with exactly the stored parameters and a 32-byte output', async () => {
    await deriveMaster('pw-pw-pw-pw-pw', SALT, fast);
    expect(hashRawSpy).toHaveBeenCalledTimes(1);
    const [pw, opts] = hashRawSpy.mock.calls[0] ?? [];
    expect(Buffer.from(pw as Uint8Array).toString('utf8')).toBe('pw-pw-pw-pw-pw');
    expect(opts).toMatchObject({ algorithm: 2, memoryCost: 7_168, timeCost: 5, parallelism: 1, outputLen: 32 });
    expect(Buffer.from(opts?.salt as Uint8Array).equals(SALT)).toBe(true);
  });

  it('differs for a different salt', async () => {
    const other = Buffer.from(SALT);
    other[0] = (other[0] ?? 0) ^ 1;
    expect((await deriveMaster('correct horse battery staple', other, fast)).equals(reference)).toBe(false);
  });

  it('differs for different parameters', async () => {
    expect((await deriveMaster('correct horse battery staple', SALT, params(7_168, 6))).equals(reference)).toBe(false);
  });

  it('verifies the exact password bytes: NFC and NFD "é" differ, a trailing space matters, case matters', async () => {
    const nfc = 'caf\u00e9-password-1';
    const nfd = 'cafe\u0301-password-1';
    expect(nfc.normalize('NFC')).toBe(nfd.normalize('NFC')); // the same text to a reader
    const [a, b, c, d] = await Promise.all([
      deriveMaster(nfc, SALT, fast),
      deriveMaster(nfd, SALT, fast),
      deriveMaster(`${nfc} `, SALT, fast),
      deriveMaster(nfc.toUpperCase(), SALT, fast),
    ]);
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    expect(a.equals(d)).toBe(false);
  });

  it.each([0, 1, 8, 15])('refuses a %i-byte salt without calling argon2', async (n) => {
    await expect(deriveMaster('correct horse battery staple', randomBytes(n), fast)).rejects.toThrow(KdfParamsError);
    expect(hashRawSpy).not.toHaveBeenCalled();
  });

  it('accepts a 16-byte salt (SALT_BYTES)', () => {
    expect(SALT_BYTES).toBe(16);
  });

  it('refuses tampered parameters with an error and never runs argon2 over the ceiling', async () => {
    await expect(deriveMaster('pw-pw-pw-pw-pw', SALT, params(4_194_304, 1))).rejects.toThrow(KdfParamsError);
    await expect(deriveMaster('pw-pw-pw-pw-pw', SALT, params(8, 1))).rejects.toThrow(KdfParamsError);
    await expect(derivePasswordKeys('pw-pw-pw-pw-pw', SALT, params(4_194_304, 1))).rejects.toThrow(KdfParamsError);
    expect(hashRawSpy).not.toHaveBeenCalled();
  });
});

describe('verifier and KEK (HKDF of the master)', () => {
  const master = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');

  it('are HKDF-SHA256(master, empty salt, purpose label), 32 bytes each', () => {
    const v = deriveAuthVerifier(master);
    const k = deriveKek(master);
    expect(v.length).toBe(32);
    expect(k.length).toBe(32);
    expect(v.equals(Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'keyturn/auth/v1', 32)))).toBe(true);
    expect(k.equals(Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'keyturn/kek/v1', 32)))).toBe(true);
  });

  it('the verifier and the KEK are independent of each other and of the master', () => {
    const v = deriveAuthVerifier(master);
    const k = deriveKek(master);
    expect(v.equals(k)).toBe(false);
    expect(v.equals(master)).toBe(false);
    expect(k.equals(master)).toBe(false);
  });

  it('hashVerifier is SHA-256 of the verifier', () => {
    const v = deriveAuthVerifier(master);
    expect(hashVerifier(v).equals(createHash('sha256').update(v).digest())).toBe(true);
  });

  it('verifierMatches is true only for the right verifier', () => {
    const v = deriveAuthVerifier(master);
    const stored = hashVerifier(v);
    expect(verifierMatches(v, stored)).toBe(true);
    expect(verifierMatches(deriveKek(master), stored)).toBe(false);
    const first = Buffer.from(v);
    first[0] = (first[0] ?? 0) ^ 1;
    const last = Buffer.from(v);
    last[31] = (last[31] ?? 0) ^ 1;
    expect(verifierMatches(first, stored)).toBe(false);
    expect(verifierMatches(last, stored)).toBe(false);
    // The stored hash is not itself a verifier, and a malformed stored hash is a mismatch, not a throw.
    expect(verifierMatches(stored, stored)).toBe(false);
    expect(verifierMatches(v, stored.subarray(0, 16))).toBe(false);
    expect(verifierMatches(v, Buffer.alloc(0))).toBe(false);
    expect(verifierMatches(v, Buffer.concat([stored, Buffer.from([0])]))).toBe(false);
  });
});

describe('derivePasswordKeys', () => {
  const fast = params(7_168, 5);

  it('equals deriveMaster followed by the two HKDFs, and a wrong password matches nothing', async () => {
    const salt = randomBytes(16);
    const [keys, master, wrong] = await Promise.all([
      derivePasswordKeys('a long passphrase here', salt, fast),
      deriveMaster('a long passphrase here', salt, fast),
      derivePasswordKeys('a long passphrase here!', salt, fast),
    ]);
    expect(keys.verifier.equals(deriveAuthVerifier(master))).toBe(true);
    expect(keys.kek.equals(deriveKek(master))).toBe(true);
    expect(verifierMatches(keys.verifier, hashVerifier(keys.verifier))).toBe(true);
    expect(verifierMatches(wrong.verifier, hashVerifier(keys.verifier))).toBe(false);
    expect(wrong.kek.equals(keys.kek)).toBe(false);
  });

  it('a new salt with the same password gives a new verifier and a new KEK (rotation, D4)', async () => {
    const [a, b] = await Promise.all([
      derivePasswordKeys('same password twice', randomBytes(16), fast),
      derivePasswordKeys('same password twice', randomBytes(16), fast),
    ]);
    expect(a.kek.equals(b.kek)).toBe(false);
    expect(a.verifier.equals(b.verifier)).toBe(false);
  });

  it('works at the default parameters', async () => {
    const keys = await derivePasswordKeys('default params check', randomBytes(16), DEFAULT_KDF_PARAMS);
    expect(keys.kek.length).toBe(32);
    expect(keys.verifier.length).toBe(32);
  });
});
