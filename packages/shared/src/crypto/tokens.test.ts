import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SETUP_CODE_BYTES,
  TEMP_PASSWORD_BYTES,
  base32,
  constantTimeEqualStrings,
  generateSetupCode,
  generateTempPassword,
  hashTempPassword,
  normalizeTempPassword,
  sha256Hex,
  tempPasswordMatches,
} from './tokens';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const GROUPED_32 = /^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){7}$/;
const T1 = '11111111-1111-4111-8111-111111111111';
const T2 = '22222222-2222-4222-8222-222222222222';

/** An independent base32 (Crockford alphabet, MSB first, zero-padded last group) via BigInt. */
function referenceBase32(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const bits = bytes.length * 8;
  const chars = Math.ceil(bits / 5);
  n <<= BigInt(chars * 5 - bits);
  let out = '';
  for (let i = chars - 1; i >= 0; i--) out += ALPHABET[Number((n >> BigInt(i * 5)) & 31n)];
  return out;
}

/** Decode a whole-byte base32 string (length a multiple of 8 chars) back to its bytes. */
function decodeBase32(s: string): Buffer {
  let n = 0n;
  for (const c of s) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    n = (n << 5n) | BigInt(v);
  }
  const len = (s.length * 5) / 8;
  const out = Buffer.alloc(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

describe('base32 (Crockford alphabet)', () => {
  it('known values', () => {
    expect(base32(new Uint8Array())).toBe('');
    expect(base32(Uint8Array.of(0))).toBe('00');
    expect(base32(Uint8Array.of(0xff))).toBe('ZW');
    expect(base32(Buffer.alloc(5, 0xff))).toBe('ZZZZZZZZ');
    expect(base32(Buffer.alloc(5))).toBe('00000000');
    expect(base32(Buffer.from('f'))).toBe('CR');
    expect(base32(Buffer.from('foobar'))).toBe('CSQPYRK1E8');
  });

  it('agrees with an independent implementation for every length 0..64', () => {
    for (let len = 0; len <= 64; len++) {
      for (let k = 0; k < 5; k++) {
        const b = randomBytes(len);
        expect(base32(b)).toBe(referenceBase32(b));
      }
    }
  });

  it('never emits I, L, O or U', () => {
    expect(base32(randomBytes(4096))).not.toMatch(/[ILOU]/);
  });
});

describe('generateTempPassword (DESIGN §2, RELIABILITY D9)', () => {
  it('is 32 Crockford base32 characters in 8 groups of 4', () => {
    for (let i = 0; i < 200; i++) {
      const pw = generateTempPassword();
      expect(pw).toMatch(GROUPED_32);
      expect(pw.length).toBe(39);
      expect(pw.split('-').map((g) => g.length)).toEqual([4, 4, 4, 4, 4, 4, 4, 4]);
    }
  });

  it('carries at least 128 bits: it decodes to 20 random bytes (160 bits)', () => {
    expect(TEMP_PASSWORD_BYTES * 8).toBeGreaterThanOrEqual(128);
    const pw = generateTempPassword();
    const raw = decodeBase32(pw.replace(/-/g, ''));
    expect(raw.length).toBe(TEMP_PASSWORD_BYTES);
    expect(raw.length).toBeGreaterThanOrEqual(16);
    expect(base32(raw)).toBe(pw.replace(/-/g, ''));
    // 32 symbols from a 32-letter alphabet: 32 · log2(32) = 160 bits.
    expect(32 * Math.log2(ALPHABET.length)).toBeGreaterThanOrEqual(128);
  });

  it(
    '100,000 are all distinct, and the characters are uniform (chi-squared, 31 d.o.f., p > 0.01)',
    // A fair generator fails a 1% test 1% of the time; one retry on fresh samples makes a false
    // alarm 1 in 10,000, while a biased generator still fails both runs.
    { retry: 1 },
    () => {
      const N = 100_000;
      const seen = new Set<string>();
      const counts = new Map<string, number>(Array.from(ALPHABET, (c) => [c, 0]));
      const perPosition = Array.from({ length: 32 }, () => new Set<string>());
      for (let i = 0; i < N; i++) {
        const pw = generateTempPassword();
        seen.add(pw);
        const chars = pw.replace(/-/g, '');
        for (let j = 0; j < chars.length; j++) {
          const c = chars[j] as string;
          const prev = counts.get(c);
          if (prev === undefined) throw new Error(`unexpected character ${c}`);
          counts.set(c, prev + 1);
          perPosition[j]?.add(c);
        }
      }
      expect(seen.size).toBe(N);

      const total = N * 32;
      const expected = total / ALPHABET.length;
      let chi2 = 0;
      for (const observed of counts.values()) chi2 += (observed - expected) ** 2 / expected;
      expect(counts.size).toBe(32);
      // Critical value of chi-squared with 31 degrees of freedom at alpha = 0.01.
      expect(chi2).toBeLessThan(52.19);

      // Every position, including the last (where a padding bug would show), uses the whole alphabet.
      for (const s of perPosition) expect(s.size).toBe(32);
    },
  );
});

describe('normalizeTempPassword', () => {
  it('uppercases, drops dashes and whitespace, maps O to 0 and I/L to 1', () => {
    expect(normalizeTempPassword('abcd-efgh')).toBe('ABCDEFGH');
    expect(normalizeTempPassword(' ab cd\tef\ngh ')).toBe('ABCDEFGH');
    expect(normalizeTempPassword('oO0-iI1-lL1')).toBe('000111111');
    expect(normalizeTempPassword('--')).toBe('');
  });

  it('is idempotent on generated passwords and maps them to their ungrouped form', () => {
    for (let i = 0; i < 100; i++) {
      const pw = generateTempPassword();
      const n = normalizeTempPassword(pw);
      expect(n).toBe(pw.replace(/-/g, ''));
      expect(normalizeTempPassword(n)).toBe(n);
    }
  });
});

describe('hashTempPassword / tempPasswordMatches', () => {
  const pw = '0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ';
  const stored = hashTempPassword(T1, pw);

  it('is SHA-256 over a token-bound prefix and the normalised password', () => {
    expect(stored.length).toBe(32);
    const expected = createHash('sha256')
      .update(`keyturn/temp-password/v1|token=${T1}|0123456789ABCDEFGHJKMNPQRSTVWXYZ`)
      .digest();
    expect(stored.equals(expected)).toBe(true);
  });

  it('matches the password as shown', () => {
    expect(tempPasswordMatches(T1, pw, stored)).toBe(true);
  });

  it.each([
    ['lower case', '0123-4567-89ab-cdef-ghjk-mnpq-rstv-wxyz'],
    ['no dashes', '0123456789ABCDEFGHJKMNPQRSTVWXYZ'],
    ['spaces instead of dashes', '0123 4567 89AB CDEF GHJK MNPQ RSTV WXYZ'],
    ['surrounding whitespace', '  0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ\n'],
    ['O for 0 and I for 1', 'OI23-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ'],
    ['o for 0 and l for 1', 'ol23-4567-89ab-cdef-ghjk-mnpq-rstv-wxyz'],
    ['L for 1, mixed case and grouping', 'oL2345-6789aB-cdEF ghjkmnpq rstvwxyz'],
  ])('matches with %s', (_label, typed) => {
    expect(tempPasswordMatches(T1, typed, stored)).toBe(true);
  });

  it.each([
    ['one character changed', '0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY0'],
    ['the first character changed', '1123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ'],
    ['one character missing', '0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY'],
    ['one character extra', '0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ0'],
    ['empty', ''],
  ])('does not match with %s', (_label, typed) => {
    expect(tempPasswordMatches(T1, typed, stored)).toBe(false);
  });

  it('is bound to the token id: the same password does not match another token', () => {
    expect(hashTempPassword(T2, pw).equals(stored)).toBe(false);
    expect(tempPasswordMatches(T2, pw, stored)).toBe(false);
    expect(tempPasswordMatches(T1, pw, hashTempPassword(T2, pw))).toBe(false);
  });

  it('a generated password round-trips, and differs from every other generated one', () => {
    const a = generateTempPassword();
    const b = generateTempPassword();
    const h = hashTempPassword(T1, a);
    expect(tempPasswordMatches(T1, a.toLowerCase(), h)).toBe(true);
    expect(tempPasswordMatches(T1, b, h)).toBe(false);
  });

  it('a malformed stored hash is a mismatch, not a throw', () => {
    expect(tempPasswordMatches(T1, pw, stored.subarray(0, 16))).toBe(false);
    expect(tempPasswordMatches(T1, pw, Buffer.alloc(0))).toBe(false);
  });
});

describe('generateSetupCode (RELIABILITY D9)', () => {
  it('is a secret of at least 128 bits, 32 characters in 8 groups of 4, with no dropped characters', () => {
    expect(SETUP_CODE_BYTES * 8).toBeGreaterThanOrEqual(128);
    for (let i = 0; i < 200; i++) {
      const code = generateSetupCode();
      expect(code).toMatch(GROUPED_32);
      expect(decodeBase32(code.replace(/-/g, '')).length).toBe(SETUP_CODE_BYTES);
    }
  });

  it('10,000 are all distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(generateSetupCode());
    expect(seen.size).toBe(10_000);
  });
});

describe('sha256Hex / constantTimeEqualStrings', () => {
  it('sha256Hex hashes strings and bytes alike', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });

  it('compares strings of any length without throwing', () => {
    expect(constantTimeEqualStrings('same', 'same')).toBe(true);
    expect(constantTimeEqualStrings('same', 'Same')).toBe(false);
    expect(constantTimeEqualStrings('short', 'a much longer string')).toBe(false);
    expect(constantTimeEqualStrings('', '')).toBe(true);
    expect(constantTimeEqualStrings('', 'x')).toBe(false);
  });
});
