import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { aad } from './aad';
import { IntegrityError, open, seal } from './aead';
import {
  type AmkKeyPair,
  amkFingerprint,
  amkPublicFromPrivate,
  generateAmk,
  openFinalADek,
  openPendingADek,
  sealFinalADek,
  sealPendingADek,
  unwrapAmkForAdmin,
  wrapAmkForAdmin,
} from './amk';
import { dekCheckValue, dekMatchesCheckValue, generateDek, generateKey, unwrapDek } from './dek';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const A1 = '33333333-3333-4333-8333-333333333333';
const A2 = '44444444-4444-4444-8444-444444444444';
const M1 = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee';
const M2 = 'ffffffff-ffff-4fff-8fff-ffffffffffff';

/** The pending A-DEK layout: [0x01][enc 32][HPKE ciphertext = DEK 32 + tag 16]. */
const PENDING_LEN = 1 + 32 + 32 + 16;

async function expectRejectsIntegrity(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(IntegrityError);
}

let amk: AmkKeyPair;
let other: AmkKeyPair;
beforeAll(async () => {
  [amk, other] = await Promise.all([generateAmk(), generateAmk()]);
});

describe('generateAmk / amkPublicFromPrivate', () => {
  it('gives raw 32-byte X25519 keys, distinct each time', async () => {
    expect(amk.publicKey.length).toBe(32);
    expect(amk.privateKey.length).toBe(32);
    expect(amk.publicKey.equals(other.publicKey)).toBe(false);
    expect(amk.privateKey.equals(other.privateKey)).toBe(false);
    const third = await generateAmk();
    expect(third.privateKey.equals(amk.privateKey)).toBe(false);
  });

  it('recomputes the public key from the private key', () => {
    expect(amkPublicFromPrivate(amk.privateKey).equals(amk.publicKey)).toBe(true);
    expect(amkPublicFromPrivate(other.privateKey).equals(other.publicKey)).toBe(true);
    expect(amkPublicFromPrivate(amk.privateKey).equals(other.publicKey)).toBe(false);
    expect(amkPublicFromPrivate(new Uint8Array(amk.privateKey)).equals(amk.publicKey)).toBe(true);
  });

  it('wipes the PKCS#8 copy of the private key it builds (issue 10 item 7)', () => {
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      amkPublicFromPrivate(amk.privateKey);
      const copies = concat.mock.results.map((r) => r.value as Buffer).filter((b) => b.length === 48);
      expect(copies).toHaveLength(1);
      expect(copies[0]!.every((b) => b === 0)).toBe(true);
    } finally {
      concat.mockRestore();
    }
  });

  it('gives a stable fingerprint of a public key: eight groups of four hex digits, different per key', () => {
    expect(amkFingerprint(amk.publicKey)).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(amkFingerprint(amk.publicKey)).toBe(amkFingerprint(Buffer.from(amk.publicKey)));
    expect(amkFingerprint(amk.publicKey)).not.toBe(amkFingerprint(other.publicKey));
  });

  it('matches the RFC 7748 §6.1 X25519 test keys', () => {
    // Alice's private and public key from RFC 7748 §6.1.
    const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
    const pub = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    expect(amkPublicFromPrivate(priv).toString('hex')).toBe(pub);
  });
});

describe('pending A-DEK (HPKE, RFC 9180)', () => {
  it('round-trips, and the opened DEK passes its check value', async () => {
    const dek = generateDek();
    const blob = await sealPendingADek(amk.publicKey, dek, U1, 1);
    expect(blob.length).toBe(PENDING_LEN);
    expect(blob[0]).toBe(0x01);
    const opened = await openPendingADek(amk.privateKey, blob, U1, 1);
    expect(opened.equals(dek)).toBe(true);
    expect(dekMatchesCheckValue(opened, dekCheckValue(dek))).toBe(true);
  });

  it('accepts plain Uint8Array keys and blobs', async () => {
    const dek = generateDek();
    const blob = await sealPendingADek(new Uint8Array(amk.publicKey), new Uint8Array(dek), U1, 1);
    expect((await openPendingADek(new Uint8Array(amk.privateKey), new Uint8Array(blob), U1, 1)).equals(dek)).toBe(true);
  });

  it('uses a fresh encapsulation each time', async () => {
    const dek = generateDek();
    const [a, b] = await Promise.all([sealPendingADek(amk.publicKey, dek, U1, 1), sealPendingADek(amk.publicKey, dek, U1, 1)]);
    expect(a.subarray(1, 33).equals(b.subarray(1, 33))).toBe(false);
    expect(a.equals(b)).toBe(false);
  });

  it('a blob sealed for user A at kv 1 fails for user B, for kv 2, and for B at kv 2', async () => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob, U2, 1));
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob, U1, 2));
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob, U2, 2));
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob, U1, 0));
  });

  it('swapping the pending A-DEKs of two users fails both ways', async () => {
    const [b1, b2] = await Promise.all([
      sealPendingADek(amk.publicKey, generateDek(), U1, 1),
      sealPendingADek(amk.publicKey, generateDek(), U2, 1),
    ]);
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, b1, U2, 1));
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, b2, U1, 1));
  });

  it('fails under another AMK private key', async () => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    await expectRejectsIntegrity(openPendingADek(other.privateKey, blob, U1, 1));
    await expectRejectsIntegrity(openPendingADek(randomBytes(32), blob, U1, 1));
  });

  it('a tampered enc byte fails', async () => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    for (const i of [1, 16, 32]) {
      const t = Buffer.from(blob);
      t[i] = (t[i] ?? 0) ^ 0x01;
      await expectRejectsIntegrity(openPendingADek(amk.privateKey, t, U1, 1));
    }
  });

  it('flipping any single byte (version, enc, ciphertext, tag) fails', async () => {
    const dek = generateDek();
    const blob = await sealPendingADek(amk.publicKey, dek, U1, 1);
    const results = await Promise.allSettled(
      Array.from({ length: blob.length }, (_, i) => {
        const t = Buffer.from(blob);
        t[i] = (t[i] ?? 0) ^ 0xff;
        return openPendingADek(amk.privateKey, t, U1, 1);
      }),
    );
    expect(results.length).toBe(PENDING_LEN);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(IntegrityError);
    }
    expect((await openPendingADek(amk.privateKey, blob, U1, 1)).equals(dek)).toBe(true);
  });

  it('fails when truncated (tag cut to 12, 8, 4, 0 bytes, or shorter) or extended', async () => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    for (const keep of [12, 8, 4, 0]) {
      await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob.subarray(0, blob.length - 16 + keep), U1, 1));
    }
    for (const len of [0, 1, 33, 48]) await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob.subarray(0, len), U1, 1));
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, Buffer.concat([blob, Buffer.from([0])]), U1, 1));
  });

  it.each([0x00, 0x02, 0xff])('refuses unknown format byte %i', async (v) => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    blob[0] = v;
    await expectRejectsIntegrity(openPendingADek(amk.privateKey, blob, U1, 1));
  });

  it('is not an AES-GCM blob: it does not open as a final A-DEK or a DEK wrap', async () => {
    const blob = await sealPendingADek(amk.publicKey, generateDek(), U1, 1);
    expect(() => openFinalADek(amk.privateKey, blob, U1, 1)).toThrow(IntegrityError);
    expect(() => unwrapDek(amk.privateKey, blob, U1, 1)).toThrow(IntegrityError);
  });
});

describe('final A-DEK', () => {
  it('round-trips, and is keyed by the AMK private key (not the private key itself)', () => {
    const dek = generateDek();
    const blob = sealFinalADek(amk.privateKey, dek, U1, 1);
    expect(blob.length).toBe(1 + 12 + 32 + 16);
    expect(openFinalADek(amk.privateKey, blob, U1, 1).equals(dek)).toBe(true);
    expect(() => open(amk.privateKey, blob, aad.aDekFinal(U1, 1))).toThrow(IntegrityError);
  });

  it('fails for another user, another key version or another AMK', () => {
    const blob = sealFinalADek(amk.privateKey, generateDek(), U1, 1);
    expect(() => openFinalADek(amk.privateKey, blob, U2, 1)).toThrow(IntegrityError);
    expect(() => openFinalADek(amk.privateKey, blob, U1, 2)).toThrow(IntegrityError);
    expect(() => openFinalADek(amk.privateKey, blob, U2, 2)).toThrow(IntegrityError);
    expect(() => openFinalADek(other.privateKey, blob, U1, 1)).toThrow(IntegrityError);
  });

  it('cannot be made or opened with the AMK public key', () => {
    const blob = sealFinalADek(amk.privateKey, generateDek(), U1, 1);
    expect(() => openFinalADek(amk.publicKey, blob, U1, 1)).toThrow(IntegrityError);
  });

  it('a final A-DEK blob does not open as a secret or a DEK wrap of the same user and version', () => {
    const blob = sealFinalADek(amk.privateKey, generateDek(), U1, 1);
    expect(() => unwrapDek(amk.privateKey, blob, U1, 1)).toThrow(IntegrityError);
  });

  it('flipping any single byte fails', () => {
    const blob = sealFinalADek(amk.privateKey, generateDek(), U1, 1);
    for (let i = 0; i < blob.length; i++) {
      const t = Buffer.from(blob);
      t[i] = (t[i] ?? 0) ^ 0x01;
      expect(() => openFinalADek(amk.privateKey, t, U1, 1)).toThrow(IntegrityError);
    }
  });

  it('pending -> check value -> final, as an admin would finalise', async () => {
    const dek = generateDek();
    const kcv = dekCheckValue(dek);
    const pending = await sealPendingADek(amk.publicKey, dek, U2, 5);
    const recovered = await openPendingADek(amk.privateKey, pending, U2, 5);
    expect(dekMatchesCheckValue(recovered, kcv)).toBe(true);
    const final = sealFinalADek(amk.privateKey, recovered, U2, 5);
    expect(dekMatchesCheckValue(openFinalADek(amk.privateKey, final, U2, 5), kcv)).toBe(true);
  });
});

describe('AMK wrapped for an admin', () => {
  it('round-trips under the admin KEK', () => {
    const kek = generateKey();
    const w = wrapAmkForAdmin(kek, amk.privateKey, A1, M1);
    const back = unwrapAmkForAdmin(kek, w, A1, M1);
    expect(back.equals(amk.privateKey)).toBe(true);
    expect(amkPublicFromPrivate(back).equals(amk.publicKey)).toBe(true);
  });

  it("fails under another admin's id, another AMK id, or another KEK", () => {
    const kek = generateKey();
    const w = wrapAmkForAdmin(kek, amk.privateKey, A1, M1);
    expect(() => unwrapAmkForAdmin(kek, w, A2, M1)).toThrow(IntegrityError);
    expect(() => unwrapAmkForAdmin(kek, w, A1, M2)).toThrow(IntegrityError);
    expect(() => unwrapAmkForAdmin(generateKey(), w, A1, M1)).toThrow(IntegrityError);
  });

  it('an AMK wrap does not open as a DEK wrap and a DEK wrap does not open as an AMK wrap', () => {
    const kek = generateKey();
    const w = wrapAmkForAdmin(kek, amk.privateKey, A1, M1);
    expect(() => unwrapDek(kek, w, A1, 1)).toThrow(IntegrityError);
    const dekWrap = seal(kek, generateDek(), aad.dekWrap(A1, 1));
    expect(() => unwrapAmkForAdmin(kek, dekWrap, A1, M1)).toThrow(IntegrityError);
  });
});
