import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aad } from './aad';
import { IntegrityError, open, seal } from './aead';
import {
  KCV_BYTES,
  dekCheckValue,
  dekMatchesCheckValue,
  generateDek,
  generateKey,
  unwrapDek,
  unwrapForSession,
  wrapDek,
  wrapForSession,
} from './dek';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const S1 = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const S2 = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

describe('generateDek / generateKey (RELIABILITY D9)', () => {
  it('gives 32 random bytes, with no repeats over 10,000 draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const k = i % 2 ? generateDek() : generateKey();
      expect(k.length).toBe(32);
      seen.add(k.toString('hex'));
    }
    expect(seen.size).toBe(10_000);
  });
});

describe('wrapDek / unwrapDek', () => {
  const kek = generateKey();
  const dek = generateDek();

  it('round-trips', () => {
    const w = wrapDek(kek, dek, U1, 1);
    expect(w.length).toBe(1 + 12 + 32 + 16);
    expect(unwrapDek(kek, w, U1, 1).equals(dek)).toBe(true);
  });

  it('is sealed under the dek-wrap AAD', () => {
    expect(open(kek, wrapDek(kek, dek, U1, 7), aad.dekWrap(U1, 7)).equals(dek)).toBe(true);
  });

  it("fails in another user's row, at another key version, or under another KEK", () => {
    const w = wrapDek(kek, dek, U1, 1);
    expect(() => unwrapDek(kek, w, U2, 1)).toThrow(IntegrityError);
    expect(() => unwrapDek(kek, w, U1, 2)).toThrow(IntegrityError);
    expect(() => unwrapDek(kek, w, U1, 0)).toThrow(IntegrityError);
    expect(() => unwrapDek(generateKey(), w, U1, 1)).toThrow(IntegrityError);
  });

  it("one user's wrapped DEK cannot be opened in another user's row even with that user's KEK", () => {
    const kek2 = generateKey();
    const w1 = wrapDek(kek, dek, U1, 1);
    expect(() => unwrapDek(kek2, w1, U2, 1)).toThrow(IntegrityError);
  });

  it('a DEK wrap does not open as a session wrap or a secret, and vice versa', () => {
    const w = wrapDek(kek, dek, U1, 1);
    expect(() => unwrapForSession(kek, w, S1, U1, 1)).toThrow(IntegrityError);
    expect(() => open(kek, w, aad.secretValue(U1, S1, 1))).toThrow(IntegrityError);
    const secret = seal(kek, dek, aad.secretValue(U1, S1, 1));
    expect(() => unwrapDek(kek, secret, U1, 1)).toThrow(IntegrityError);
  });
});

describe('DEK check value', () => {
  it('is HMAC-SHA256(DEK, label) truncated to 16 bytes, and deterministic', () => {
    const dek = generateDek();
    const kcv = dekCheckValue(dek);
    expect(KCV_BYTES).toBe(16);
    expect(kcv.length).toBe(16);
    expect(kcv.equals(createHmac('sha256', dek).update('keyturn/kcv/v1').digest().subarray(0, 16))).toBe(true);
    expect(dekCheckValue(Buffer.from(dek)).equals(kcv)).toBe(true);
  });

  it('matches only its own DEK', () => {
    const dek = generateDek();
    const kcv = dekCheckValue(dek);
    expect(dekMatchesCheckValue(dek, kcv)).toBe(true);
    expect(dekMatchesCheckValue(generateDek(), kcv)).toBe(false);
    const near = Buffer.from(dek);
    near[0] = (near[0] ?? 0) ^ 1;
    expect(dekMatchesCheckValue(near, kcv)).toBe(false);
  });

  it('a tampered or malformed check value is a mismatch, not a throw', () => {
    const dek = generateDek();
    const kcv = dekCheckValue(dek);
    for (const i of [0, 15]) {
      const t = Buffer.from(kcv);
      t[i] = (t[i] ?? 0) ^ 1;
      expect(dekMatchesCheckValue(dek, t)).toBe(false);
    }
    expect(dekMatchesCheckValue(dek, kcv.subarray(0, 15))).toBe(false);
    expect(dekMatchesCheckValue(dek, Buffer.alloc(0))).toBe(false);
    expect(dekMatchesCheckValue(dek, Buffer.concat([kcv, Buffer.from([0])]))).toBe(false);
  });

  it('distinct DEKs give distinct check values (no collisions over 2,000 DEKs)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) seen.add(dekCheckValue(generateDek()).toString('hex'));
    expect(seen.size).toBe(2_000);
  });

  it('does not reveal the DEK', () => {
    const dek = generateDek();
    const kcv = dekCheckValue(dek);
    expect(dek.includes(kcv.subarray(0, 8))).toBe(false);
  });
});

describe('session wrap', () => {
  const sessionKey = generateKey();
  const dek = generateDek();

  it('round-trips', () => {
    const w = wrapForSession(sessionKey, dek, S1, U1, 3);
    expect(unwrapForSession(sessionKey, w, S1, U1, 3).equals(dek)).toBe(true);
    expect(open(sessionKey, w, aad.sessionDek(S1, U1, 3)).equals(dek)).toBe(true);
  });

  it('fails for another session, user, key version or session key', () => {
    const w = wrapForSession(sessionKey, dek, S1, U1, 3);
    expect(() => unwrapForSession(sessionKey, w, S2, U1, 3)).toThrow(IntegrityError);
    expect(() => unwrapForSession(sessionKey, w, S1, U2, 3)).toThrow(IntegrityError);
    expect(() => unwrapForSession(sessionKey, w, S1, U1, 4)).toThrow(IntegrityError);
    expect(() => unwrapForSession(sessionKey, w, S1, U1, 2)).toThrow(IntegrityError);
    expect(() => unwrapForSession(generateKey(), w, S1, U1, 3)).toThrow(IntegrityError);
  });

  it('swapping the session ids and the user ids between two sessions fails', () => {
    const w1 = wrapForSession(sessionKey, dek, S1, U1, 1);
    const w2 = wrapForSession(sessionKey, dek, S2, U2, 1);
    expect(() => unwrapForSession(sessionKey, w1, S2, U2, 1)).toThrow(IntegrityError);
    expect(() => unwrapForSession(sessionKey, w2, S1, U1, 1)).toThrow(IntegrityError);
    expect(() => unwrapForSession(sessionKey, w1, U1, S1, 1)).toThrow(IntegrityError); // argument order swapped
  });

  it('a session wrap does not open as a DEK wrap', () => {
    const w = wrapForSession(sessionKey, dek, S1, U1, 1);
    expect(() => unwrapDek(sessionKey, w, U1, 1)).toThrow(IntegrityError);
  });
});
