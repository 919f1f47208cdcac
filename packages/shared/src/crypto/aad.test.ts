import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aad } from './aad';
import { IntegrityError, open, seal } from './aead';

describe('AAD strings are part of the storage format', () => {
  it('are exactly the documented strings (changing one makes every stored blob unreadable)', () => {
    expect(aad.secretName('U', 'S', 1)).toBe('keyturn/secret-name/v1|user=U|secret=S|kv=1');
    expect(aad.secretValue('U', 'S', 1)).toBe('keyturn/secret-value/v1|user=U|secret=S|kv=1');
    expect(aad.dekWrap('U', 2)).toBe('keyturn/dek-wrap/v1|user=U|kv=2');
    expect(aad.sessionDek('SS', 'U', 3)).toBe('keyturn/session-dek/v1|session=SS|user=U|kv=3');
    expect(aad.aDekPending('U', 4)).toBe('keyturn/adek-pending/v1|user=U|kv=4');
    expect(aad.aDekFinal('U', 5)).toBe('keyturn/adek-final/v1|user=U|kv=5');
    expect(aad.amkWrap('A', 'M')).toBe('keyturn/amk-wrap/v1|admin=A|amk=M');
  });
});

/**
 * RELIABILITY D2: every ciphertext swap fails. One key is used for every context on purpose, so
 * only the associated data stands between a blob and the wrong place: secret S1 into S2, across
 * users, across key versions, name <-> value, and across purposes (a DEK wrap opened as a session
 * wrap, a secret opened as an A-DEK, ...).
 */
describe('AAD swap matrix (RELIABILITY D2)', () => {
  const users = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
  const secrets = ['aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'];
  const sessions = ['cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'];
  const admins = users;
  const amks = ['eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee', 'ffffffff-ffff-4fff-8fff-ffffffffffff'];
  const kvs = [1, 2, 10];

  const contexts: string[] = [];
  for (const u of users) {
    for (const kv of kvs) {
      for (const s of secrets) contexts.push(aad.secretName(u, s, kv), aad.secretValue(u, s, kv));
      contexts.push(aad.dekWrap(u, kv), aad.aDekPending(u, kv), aad.aDekFinal(u, kv));
      for (const sid of sessions) contexts.push(aad.sessionDek(sid, u, kv));
    }
  }
  for (const a of admins) for (const m of amks) contexts.push(aad.amkWrap(a, m));

  it('produces pairwise distinct contexts', () => {
    expect(new Set(contexts).size).toBe(contexts.length);
    expect(contexts.length).toBe(2 * 3 * (4 + 3 + 2) + 4);
  });

  it('every blob opens in its own context and fails with IntegrityError in every other one', () => {
    const key = randomBytes(32);
    const blobs = contexts.map((c, i) => ({ ctx: c, pt: Buffer.from(`plaintext #${i}`), blob: seal(key, Buffer.from(`plaintext #${i}`), c) }));
    let swaps = 0;
    let opened = 0;
    for (const from of blobs) {
      expect(open(key, from.blob, from.ctx).equals(from.pt)).toBe(true);
      for (const to of blobs) {
        if (to === from) continue;
        try {
          open(key, from.blob, to.ctx);
          opened++;
        } catch (e) {
          expect(e).toBeInstanceOf(IntegrityError);
        }
        swaps++;
      }
    }
    expect(swaps).toBe(contexts.length * (contexts.length - 1));
    expect(opened).toBe(0);
  });

  it('the classic pairs, spelled out', () => {
    const key = randomBytes(32);
    const [u1, u2] = users as [string, string];
    const [s1, s2] = secrets as [string, string];
    const cases: [string, string][] = [
      [aad.secretName(u1, s1, 1), aad.secretValue(u1, s1, 1)], // name -> value
      [aad.secretValue(u1, s1, 1), aad.secretName(u1, s1, 1)], // value -> name
      [aad.secretValue(u1, s1, 1), aad.secretValue(u1, s2, 1)], // other secret id
      [aad.secretValue(u1, s1, 1), aad.secretValue(u2, s1, 1)], // other user
      [aad.secretValue(u1, s1, 1), aad.secretValue(u1, s1, 2)], // other key version
      [aad.dekWrap(u1, 1), aad.dekWrap(u2, 1)], // one user's wrapped DEK in another's row
      [aad.dekWrap(u1, 1), aad.dekWrap(u1, 2)],
      [aad.aDekFinal(u1, 1), aad.aDekFinal(u2, 1)],
      [aad.aDekFinal(u1, 1), aad.aDekFinal(u1, 2)],
      [aad.aDekFinal(u1, 1), aad.dekWrap(u1, 1)],
    ];
    for (const [sealedFor, openedAs] of cases) {
      const blob = seal(key, Buffer.from('x'), sealedFor);
      expect(() => open(key, blob, openedAs)).toThrow(IntegrityError);
    }
  });
});
