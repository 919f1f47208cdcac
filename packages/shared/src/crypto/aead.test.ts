import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aad } from './aad';
import { BLOB_FORMAT_V1, IntegrityError, KEY_BYTES, NONCE_BYTES, TAG_BYTES, open, openText, seal, sealText, wipe } from './aead';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const GENERIC_MESSAGE = 'ciphertext failed its integrity check';

/** Every failure to open must be the one generic IntegrityError (DESIGN §2, RELIABILITY D2/D3/D10). */
function expectIntegrityError(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(IntegrityError);
  expect((caught as Error).message).toBe(GENERIC_MESSAGE);
}

describe('AES-256-GCM primitive (known-answer tests through node:crypto)', () => {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (also in NIST's GCM validation set).
  const K = hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308');
  const IV = hex('cafebabefacedbaddecaf888');
  const P = hex(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  );
  const A = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
  const C = hex(
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
  );
  const T = hex('76fc6ece0f4e1768cddf8853bb2d551b');

  it('encrypts test case 16 to the published ciphertext and 128-bit tag', () => {
    const c = createCipheriv('aes-256-gcm', K, IV, { authTagLength: 16 });
    c.setAAD(A);
    const ct = Buffer.concat([c.update(P), c.final()]);
    expect(ct.toString('hex')).toBe(C.toString('hex'));
    expect(c.getAuthTag().toString('hex')).toBe(T.toString('hex'));
  });

  it('decrypts test case 16 and refuses it with a flipped tag bit', () => {
    const d = createDecipheriv('aes-256-gcm', K, IV, { authTagLength: 16 });
    d.setAAD(A);
    d.setAuthTag(T);
    expect(Buffer.concat([d.update(C), d.final()]).equals(P)).toBe(true);

    const bad = Buffer.from(T);
    bad[15] = (bad[15] ?? 0) ^ 1;
    const d2 = createDecipheriv('aes-256-gcm', K, IV, { authTagLength: 16 });
    d2.setAAD(A);
    d2.setAuthTag(bad);
    d2.update(C);
    expect(() => d2.final()).toThrow();
  });

  it('test case 13 (zero key, zero IV, empty plaintext) gives the published tag', () => {
    const c = createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12), { authTagLength: 16 });
    expect(Buffer.concat([c.update(Buffer.alloc(0)), c.final()]).length).toBe(0);
    expect(c.getAuthTag().toString('hex')).toBe('530f8afbc74536b9a963b4f1c4cb738b');
  });

  it('test case 14 (zero key, zero IV, one zero block) gives the published ciphertext and tag', () => {
    const c = createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12), { authTagLength: 16 });
    const ct = Buffer.concat([c.update(Buffer.alloc(16)), c.final()]);
    expect(ct.toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18');
    expect(c.getAuthTag().toString('hex')).toBe('d0d1c8a799996bf0265b98b5d48ab919');
  });

  it('with authTagLength 16, node refuses short tags outright (the explicit 4-byte case of D3)', () => {
    for (const n of [4, 8, 12, 15]) {
      const d = createDecipheriv('aes-256-gcm', K, IV, { authTagLength: 16 });
      expect(() => d.setAuthTag(T.subarray(0, n))).toThrow();
    }
  });
});

describe('seal/open blob format', () => {
  const key = randomBytes(KEY_BYTES);
  const ctx = aad.secretValue('user-1', 'secret-1', 1);

  it('constants match the documented format', () => {
    expect(BLOB_FORMAT_V1).toBe(0x01);
    expect(KEY_BYTES).toBe(32);
    expect(NONCE_BYTES).toBe(12);
    expect(TAG_BYTES).toBe(16);
  });

  it('lays a blob out as [0x01][nonce 12][ciphertext][tag 16]', () => {
    for (const len of [0, 1, 15, 16, 17, 100]) {
      const blob = seal(key, randomBytes(len), ctx);
      expect(blob.length).toBe(1 + NONCE_BYTES + len + TAG_BYTES);
      expect(blob[0]).toBe(0x01);
    }
  });

  it('is plain AES-256-GCM with AAD = format byte || UTF-8 AAD string (decrypts independently)', () => {
    const pt = Buffer.from('independent check');
    const blob = seal(key, pt, ctx);
    const d = createDecipheriv('aes-256-gcm', key, blob.subarray(1, 13), { authTagLength: 16 });
    d.setAAD(Buffer.concat([Buffer.from([0x01]), Buffer.from(ctx, 'utf8')]));
    d.setAuthTag(blob.subarray(blob.length - 16));
    expect(Buffer.concat([d.update(blob.subarray(13, blob.length - 16)), d.final()]).equals(pt)).toBe(true);
  });

  it('opens a blob built independently to the documented format', () => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(Buffer.concat([Buffer.from([0x01]), Buffer.from(ctx, 'utf8')]));
    const ct = Buffer.concat([c.update(Buffer.from('hand made')), c.final()]);
    const blob = Buffer.concat([Buffer.from([0x01]), nonce, ct, c.getAuthTag()]);
    expect(openText(key, blob, ctx)).toBe('hand made');
  });
});

describe('seal/open round trips', () => {
  const key = randomBytes(32);
  const ctx = aad.secretName('u', 's', 3);

  it.each([0, 1, 12, 16, 31, 32, 33, 1000, 65_536])('round-trips %i bytes', (len) => {
    const pt = randomBytes(len);
    expect(open(key, seal(key, pt, ctx), ctx).equals(pt)).toBe(true);
  });

  it('round-trips text, including non-ASCII and astral characters', () => {
    for (const s of ['', 'hunter2', 'pässwörd ✓', 'emoji 🔑🗝️', 'line\nbreaks\tand "quotes"']) {
      expect(openText(key, sealText(key, s, ctx), ctx)).toBe(s);
    }
  });

  it('accepts a non-ASCII AAD string and binds it exactly', () => {
    const blob = sealText(key, 'v', 'ctx/ü');
    expect(openText(key, blob, 'ctx/ü')).toBe('v');
    expectIntegrityError(() => open(key, blob, 'ctx/u\u0308')); // NFD form of the same visible string
  });

  it('opens a Uint8Array view at a non-zero offset of a larger buffer', () => {
    const blob = seal(key, Buffer.from('offset'), ctx);
    const big = new Uint8Array(blob.length + 37);
    big.set(blob, 17);
    const view = big.subarray(17, 17 + blob.length);
    expect(open(key, view, ctx).toString()).toBe('offset');
    expect(open(new Uint8Array(key), new Uint8Array(blob), ctx).toString()).toBe('offset');
  });

  it('does not modify the blob it opens', () => {
    const blob = seal(key, Buffer.from('x'), ctx);
    const copy = Buffer.from(blob);
    open(key, blob, ctx);
    expect(blob.equals(copy)).toBe(true);
  });

  it('seals the same plaintext twice to different blobs', () => {
    const pt = Buffer.from('same');
    const a = seal(key, pt, ctx);
    const b = seal(key, pt, ctx);
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
  });
});

describe('tampering (RELIABILITY D3)', () => {
  const key = randomBytes(32);
  const ctx = aad.secretValue('user-1', 'secret-1', 1);

  for (const ptLen of [0, 1, 32, 64]) {
    it(`flipping any single byte of a blob with a ${ptLen}-byte plaintext fails to open`, () => {
      const blob = seal(key, randomBytes(ptLen), ctx);
      let tried = 0;
      for (let i = 0; i < blob.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const t = Buffer.from(blob);
          t[i] = (t[i] ?? 0) ^ mask;
          expectIntegrityError(() => open(key, t, ctx));
          tried++;
        }
      }
      expect(tried).toBe(blob.length * 3);
      expect(open(key, blob, ctx).length).toBe(ptLen); // the untouched blob still opens
    });
  }

  for (const ptLen of [0, 8, 64]) {
    it.each([12, 8, 4, 0])(`truncating the tag to %i bytes fails (plaintext ${ptLen} bytes)`, (n) => {
      const blob = seal(key, randomBytes(ptLen), ctx);
      const truncated = blob.subarray(0, blob.length - TAG_BYTES + n);
      expectIntegrityError(() => open(key, truncated, ctx));
    });
  }

  it('fails for any prefix of the blob, and for the empty blob', () => {
    const blob = seal(key, randomBytes(40), ctx);
    for (let len = 0; len < blob.length; len++) expectIntegrityError(() => open(key, blob.subarray(0, len), ctx));
  });

  it('fails with bytes appended or inserted', () => {
    const blob = seal(key, randomBytes(20), ctx);
    expectIntegrityError(() => open(key, Buffer.concat([blob, Buffer.from([0])]), ctx));
    expectIntegrityError(() => open(key, Buffer.concat([blob.subarray(0, 13), Buffer.from([0]), blob.subarray(13)]), ctx));
  });

  it('fails with a swapped nonce or a tag from another blob', () => {
    const pt = randomBytes(20);
    const a = seal(key, pt, ctx);
    const b = seal(key, pt, ctx);
    const nonceSwap = Buffer.concat([a.subarray(0, 1), b.subarray(1, 13), a.subarray(13)]);
    const tagSwap = Buffer.concat([a.subarray(0, a.length - 16), b.subarray(b.length - 16)]);
    expectIntegrityError(() => open(key, nonceSwap, ctx));
    expectIntegrityError(() => open(key, tagSwap, ctx));
  });

  it.each([0x00, 0x02, 0x10, 0x7f, 0x80, 0xff])('refuses unknown version byte %i', (v) => {
    const blob = seal(key, randomBytes(16), ctx);
    blob[0] = v;
    expectIntegrityError(() => open(key, blob, ctx));
  });

  it('refuses a blob whose version byte is valid in transit but was not the one authenticated', () => {
    // Re-seal by hand with format 0x02 in the AAD but 0x01 on the wire: the header is authenticated.
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(Buffer.concat([Buffer.from([0x02]), Buffer.from(ctx)]));
    const ct = Buffer.concat([c.update(Buffer.from('x')), c.final()]);
    expectIntegrityError(() => open(key, Buffer.concat([Buffer.from([0x01]), nonce, ct, c.getAuthTag()]), ctx));
  });

  it('fails with the wrong key, including a key that differs in one bit', () => {
    const blob = seal(key, randomBytes(32), ctx);
    expectIntegrityError(() => open(randomBytes(32), blob, ctx));
    const near = Buffer.from(key);
    near[31] = (near[31] ?? 0) ^ 1;
    expectIntegrityError(() => open(near, blob, ctx));
    expectIntegrityError(() => open(Buffer.alloc(32), blob, ctx));
  });

  it('fails with an AAD that differs by a prefix, a suffix or one character', () => {
    const blob = seal(key, randomBytes(8), ctx);
    for (const other of [`${ctx} `, ctx.slice(0, -1), `x${ctx}`, ctx.replace('kv=1', 'kv=2'), ctx.toUpperCase()]) {
      expectIntegrityError(() => open(key, blob, other));
    }
  });
});

describe('argument validation', () => {
  const key = randomBytes(32);
  const blob = seal(key, Buffer.from('x'), 'ctx');

  it('requires a non-empty AAD on seal and open (TypeError, not IntegrityError)', () => {
    expect(() => seal(key, Buffer.from('x'), '')).toThrow(TypeError);
    expect(() => open(key, blob, '')).toThrow(TypeError);
    expect(() => sealText(key, 'x', '')).toThrow(TypeError);
    expect(() => openText(key, blob, '')).toThrow(TypeError);
    // Callers in plain JS could pass undefined: still refused.
    expect(() => seal(key, Buffer.from('x'), undefined as unknown as string)).toThrow(TypeError);
    expect(() => open(key, blob, null as unknown as string)).toThrow(TypeError);
  });

  it.each([0, 1, 16, 24, 31, 33, 64])('refuses a %i-byte key on seal and open', (n) => {
    expect(() => seal(Buffer.alloc(n), Buffer.from('x'), 'ctx')).toThrow(TypeError);
    expect(() => open(Buffer.alloc(n), blob, 'ctx')).toThrow(TypeError);
  });
});

describe('uniform failure', () => {
  it('every kind of failure throws the same class, name and message', () => {
    const key = randomBytes(32);
    const ctx = 'keyturn/test/v1';
    const blob = seal(key, Buffer.from('secret'), ctx);
    const flipped = Buffer.from(blob);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    const versioned = Buffer.from(blob);
    versioned[0] = 2;
    const failures = [
      () => open(randomBytes(32), blob, ctx),
      () => open(key, blob, `${ctx}x`),
      () => open(key, flipped, ctx),
      () => open(key, versioned, ctx),
      () => open(key, blob.subarray(0, 10), ctx),
    ];
    const seen = new Set<string>();
    for (const f of failures) {
      try {
        f();
        throw new Error('opened');
      } catch (e) {
        expect(e).toBeInstanceOf(IntegrityError);
        seen.add(`${(e as Error).name}:${(e as Error).message}`);
      }
    }
    expect([...seen]).toEqual([`IntegrityError:${GENERIC_MESSAGE}`]);
  });
});

describe('nonce uniqueness (RELIABILITY D1)', () => {
  it('no nonce repeats over 100,000 seals under one key', () => {
    const key = randomBytes(32);
    const pt = Buffer.from('n');
    const nonces = new Set<string>();
    const N = 100_000;
    for (let i = 0; i < N; i++) nonces.add(seal(key, pt, 'ctx').toString('hex', 1, 13));
    expect(nonces.size).toBe(N);
  });
});

describe('wipe', () => {
  it('zeroes every buffer it is given and skips null/undefined', () => {
    const a = randomBytes(32);
    const b = new Uint8Array([1, 2, 3]);
    wipe(a, null, b, undefined);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.every((x) => x === 0)).toBe(true);
  });
});
