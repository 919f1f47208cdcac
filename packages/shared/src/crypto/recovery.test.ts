import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from './aead';
import { amkPublicFromPrivate, generateAmk } from './amk';
import { generateDek } from './dek';
import { DEFAULT_KDF_PARAMS } from './kdf';
import { deriveRecoveryKeyPair, openRecoveryAmk, openRecoveryDek, recoveryFingerprint, sealRecoveryAmk, sealRecoveryDek } from './recovery';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const R1 = '55555555-5555-4555-8555-555555555555';
const R2 = '66666666-6666-4666-8666-666666666666';
const M1 = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee';
const FAST = { alg: 'argon2id', m: 7_168, t: 5, p: 1 } as const;

describe('deriveRecoveryKeyPair', () => {
  it('is deterministic for one password and salt, different for another password or salt', async () => {
    const salt = randomBytes(16);
    const a = await deriveRecoveryKeyPair('correct horse battery staple', salt, FAST);
    const b = await deriveRecoveryKeyPair('correct horse battery staple', salt, FAST);
    const c = await deriveRecoveryKeyPair('correct horse battery staplE', salt, FAST);
    const d = await deriveRecoveryKeyPair('correct horse battery staple', randomBytes(16), FAST);
    expect(a.publicKey).toHaveLength(32);
    expect(a.privateKey).toHaveLength(32);
    expect(a.publicKey.equals(b.publicKey)).toBe(true);
    expect(a.privateKey.equals(b.privateKey)).toBe(true);
    expect(a.publicKey.equals(c.publicKey)).toBe(false);
    expect(a.publicKey.equals(d.publicKey)).toBe(false);
    // The private key is a real X25519 key of that public key.
    expect(amkPublicFromPrivate(a.privateKey).equals(a.publicKey)).toBe(true);
  });

  it('refuses parameters below the floor (same rules as every password derivation)', async () => {
    await expect(deriveRecoveryKeyPair('pw', randomBytes(16), { ...DEFAULT_KDF_PARAMS, m: 1024 })).rejects.toThrow(/floor/);
  });
});

describe('sealRecoveryDek / openRecoveryDek', () => {
  it('opens only with the derived private key, for the same user, request and key version', async () => {
    const salt = randomBytes(16);
    const kp = await deriveRecoveryKeyPair('a long recovery password', salt, FAST);
    const wrong = await deriveRecoveryKeyPair('another long password', salt, FAST);
    const dek = generateDek();
    const blob = await sealRecoveryDek(kp.publicKey, dek, U1, R1, 3);
    expect(blob.includes(dek)).toBe(false);
    expect((await openRecoveryDek(kp.privateKey, blob, U1, R1, 3)).equals(dek)).toBe(true);
    await expect(openRecoveryDek(wrong.privateKey, blob, U1, R1, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openRecoveryDek(kp.privateKey, blob, U2, R1, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openRecoveryDek(kp.privateKey, blob, U1, R2, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openRecoveryDek(kp.privateKey, blob, U1, R1, 4)).rejects.toBeInstanceOf(IntegrityError);
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 1]! ^= 1;
    await expect(openRecoveryDek(kp.privateKey, flipped, U1, R1, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openRecoveryDek(kp.privateKey, blob.subarray(0, 20), U1, R1, 3)).rejects.toBeInstanceOf(IntegrityError);
  });

  it('an AMK sealed for an admin recovery opens only in its own context, and never as a DEK blob', async () => {
    const kp = await deriveRecoveryKeyPair('a long recovery password', randomBytes(16), FAST);
    const amk = await generateAmk();
    const blob = await sealRecoveryAmk(kp.publicKey, amk.privateKey, U1, R1, M1);
    expect((await openRecoveryAmk(kp.privateKey, blob, U1, R1, M1)).equals(amk.privateKey)).toBe(true);
    await expect(openRecoveryAmk(kp.privateKey, blob, U2, R1, M1)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openRecoveryDek(kp.privateKey, blob, U1, R1, 1)).rejects.toBeInstanceOf(IntegrityError);
  });
});

describe('recoveryFingerprint', () => {
  it('is five words, bound to both the request id and the public key', async () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const f = recoveryFingerprint(R1, a);
    expect(f.split('-')).toHaveLength(5);
    expect(recoveryFingerprint(R1, a)).toBe(f);
    expect(recoveryFingerprint(R2, a)).not.toBe(f);
    expect(recoveryFingerprint(R1, b)).not.toBe(f);
  });
});
