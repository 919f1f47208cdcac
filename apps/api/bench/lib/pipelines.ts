/**
 * What the API's rotation is compared with, run on the same database and the same rows:
 *
 * - seeding (not measured against anything): the user's DEK, recovered with the crypto core's
 *   unlockKeyMaterial from the user's key row, encrypts N secrets exactly as the API would, and
 *   one binary COPY per chunk writes them;
 * - the floor: the least any rotation must do, with nothing else, one step after the other:
 *   SELECT the user's rows (in keyset chunks of 5,000, ciphertexts as base64 text, the fastest
 *   read on both drivers) → decrypt → encrypt (the engine's batch sealer: one CSPRNG draw of
 *   nonces per chunk) → binary COPY into a temp table; then one UPDATE … FROM → COMMIT. No
 *   backup, no verification, no audit, no overlap of crypto and I/O;
 * - the naive baseline: the same SELECT and crypto, then one UPDATE per row.
 *
 * Both re-encrypt under the user's current DEK and key version (fresh nonces), so the rows stay
 * valid for the API's rotations that follow; AES-GCM costs the same under any key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { aad, open, seal, unlockKeyMaterial } from '@keyturn/shared/crypto';
import { batchSealer, type SealFn } from '@keyturn/shared/rotation';
import { eq } from 'drizzle-orm';
import { userKeys } from '../../src/db/schema';
import type { Parent, RawConn } from './backend';
import { type CopyValue, encodeBinaryCopy } from './copy';

export interface BenchUser {
  id: string;
  email: string;
  password: string;
  token: string;
}

/** The user's current DEK and key version, from their key row and password. */
export async function userDek(parent: Parent, user: BenchUser): Promise<{ dek: Buffer; kv: number }> {
  const [row] = await parent.database.db.select().from(userKeys).where(eq(userKeys.userId, user.id));
  if (!row) throw new Error(`no key row for ${user.email}`);
  const unlocked = await unlockKeyMaterial(user.id, user.password, row);
  if (!unlocked.ok) throw new Error(`cannot unlock ${user.email}: ${unlocked.reason}`);
  unlocked.kek.fill(0);
  return { dek: unlocked.dek, kv: row.keyVersion };
}

/** A value of exactly `size` bytes of printable text (base64 of random bytes). */
const randomValue = (size: number) => randomBytes(Math.ceil((size * 3) / 4)).toString('base64').slice(0, size);

/** Insert `n` secrets of `size`-byte values for the user; returns their ids. */
export async function seedSecrets(parent: Parent, user: BenchUser, n: number, size: number): Promise<string[]> {
  const { dek, kv } = await userDek(parent, user);
  const ids: string[] = [];
  const CHUNK = 10_000;
  try {
    await parent.withConn(async (c) => {
      for (let start = 0; start < n; start += CHUNK) {
        const rows: CopyValue[][] = [];
        for (let i = start; i < Math.min(n, start + CHUNK); i++) {
          const id = randomUUID();
          ids.push(id);
          const nameCt = seal(dek, Buffer.from(`bench-secret-${String(i).padStart(6, '0')}`), aad.secretName(user.id, id, kv));
          const valueCt = seal(dek, Buffer.from(randomValue(size)), aad.secretValue(user.id, id, kv));
          rows.push([{ uuid: id }, { uuid: user.id }, { int4: kv }, { bytes: nameCt }, { bytes: valueCt }]);
        }
        await c.copyIn('secrets (id, user_id, key_version, name_ct, value_ct)', encodeBinaryCopy(rows));
      }
      await c.exec('analyze secrets');
    });
  } finally {
    dek.fill(0);
  }
  return ids;
}

export interface PipelineRun {
  ms: number;
  rows: number;
  /** Milliseconds per stage. */
  stages: Record<string, number>;
}

const CHUNK = 5_000;

/** The user's rows in id order, CHUNK at a time (bounded memory, like the API's batches). */
async function* selectChunks(c: RawConn, userId: string): AsyncGenerator<unknown[][]> {
  let after: string | null = null;
  for (;;) {
    const rows: unknown[][] = await c.rows(
      `select id, key_version, encode(name_ct, 'base64'), encode(value_ct, 'base64') from secrets
       where user_id = $1 and ($2::uuid is null or id > $2::uuid) order by id limit ${CHUNK}`,
      [userId, after],
    );
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < CHUNK) return;
    after = rows[rows.length - 1]![0] as string;
  }
}

/** Open a row's name and value (aead.open) and seal them again with `sealWith`. */
function reencrypt(userId: string, dek: Buffer, r: unknown[], sealWith: SealFn): { id: string; kv: number; nameCt: Buffer; valueCt: Buffer } {
  const id = r[0] as string;
  const kv = r[1] as number;
  const name = open(dek, Buffer.from(r[2] as string, 'base64'), aad.secretName(userId, id, kv));
  const value = open(dek, Buffer.from(r[3] as string, 'base64'), aad.secretValue(userId, id, kv));
  return { id, kv, nameCt: sealWith(dek, name, aad.secretName(userId, id, kv)), valueCt: sealWith(dek, value, aad.secretValue(userId, id, kv)) };
}

/** BEGIN → body → COMMIT on one connection, timing the commit; ROLLBACK if the body throws. */
function timedTransaction(parent: Parent, stages: Record<string, number>, body: (c: RawConn) => Promise<number>): Promise<PipelineRun> {
  return parent.withConn(async (c) => {
    const t0 = performance.now();
    await c.exec('begin');
    try {
      const rows = await body(c);
      const t = performance.now();
      await c.exec('commit');
      stages.commit = performance.now() - t;
      return { ms: performance.now() - t0, rows, stages };
    } catch (e) {
      await c.exec('rollback').catch(() => {});
      throw e;
    }
  });
}

/** Each chunk of the user's rows, re-encrypted with one batch sealer; times the SELECT and the crypto. */
async function eachReencryptedChunk(c: RawConn, user: BenchUser, dek: Buffer, stages: { select: number; crypto: number }, work: (rows: ReturnType<typeof reencrypt>[]) => Promise<void>): Promise<number> {
  let n = 0;
  let t = performance.now();
  for await (const rows of selectChunks(c, user.id)) {
    stages.select += performance.now() - t;
    // The engine's own serial sealer (one CSPRNG draw of nonces per chunk), as fast as it gets.
    t = performance.now();
    const sealWith = batchSealer(rows.length * 2);
    const done = rows.map((row) => reencrypt(user.id, dek, row, sealWith));
    stages.crypto += performance.now() - t;
    await work(done);
    n += rows.length;
    t = performance.now();
  }
  stages.select += performance.now() - t;
  return n;
}

/** The floor: SELECT → decrypt → encrypt → binary COPY, chunk after chunk; one UPDATE → COMMIT. */
export function floorRun(parent: Parent, user: BenchUser, dek: Buffer): Promise<PipelineRun> {
  const stages = { select: 0, crypto: 0, write: 0, commit: 0 };
  return timedTransaction(parent, stages, async (c) => {
    let t = performance.now();
    await c.exec('create temp table bench_floor (id uuid, kv int4, n bytea, v bytea) on commit drop');
    stages.write += performance.now() - t;
    const n = await eachReencryptedChunk(c, user, dek, stages, async (done) => {
      const out: CopyValue[][] = done.map((r) => [{ uuid: r.id }, { int4: r.kv }, { bytes: r.nameCt }, { bytes: r.valueCt }]);
      const w = performance.now();
      await c.copyIn('bench_floor (id, kv, n, v)', encodeBinaryCopy(out));
      stages.write += performance.now() - w;
    });
    t = performance.now();
    await c.exec('update secrets s set key_version = f.kv, name_ct = f.n, value_ct = f.v from bench_floor f where s.id = f.id');
    stages.write += performance.now() - t;
    return n;
  });
}

/** The naive baseline: the same SELECT and crypto, then one UPDATE (prepared) per row. */
export function naiveRun(parent: Parent, user: BenchUser, dek: Buffer): Promise<PipelineRun> {
  const stages = { select: 0, crypto: 0, write: 0, commit: 0 };
  return timedTransaction(parent, stages, (c) =>
    eachReencryptedChunk(c, user, dek, stages, async (done) => {
      const w = performance.now();
      for (const r of done) {
        await c.exec('update secrets set key_version = $2, name_ct = $3, value_ct = $4 where id = $1', [r.id, r.kv, r.nameCt, r.valueCt], 'bench_naive_update');
      }
      stages.write += performance.now() - w;
    }),
  );
}
