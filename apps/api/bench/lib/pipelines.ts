/**
 * What the API's rotation is compared with, run on the same database and the same rows:
 *
 * - seeding (not measured against anything): the user's DEK, recovered with the crypto core's
 *   unlockKeyMaterial from the user's key row, encrypts N secrets exactly as the API would, and
 *   one binary COPY per chunk writes them;
 * - the floor: the least any rotation must do, with nothing else: one SELECT of the user's rows
 *   → decrypt → encrypt → binary COPY into a temp table + one UPDATE … FROM → COMMIT;
 * - the naive baseline: the same SELECT and crypto, then one UPDATE per row.
 *
 * Both re-encrypt under the user's current DEK and key version (fresh nonces), so the rows stay
 * valid for the API's rotations that follow; AES-GCM costs the same under any key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { aad, open, seal, unlockKeyMaterial } from '@keyturn/shared/crypto';
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
const valueOf = (size: number) => randomBytes(Math.ceil((size * 3) / 4)).toString('base64').slice(0, size);

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
          const valueCt = seal(dek, Buffer.from(valueOf(size)), aad.secretValue(user.id, id, kv));
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

const asBuf = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));

async function selectAll(c: RawConn, userId: string) {
  return c.rows('select id, key_version, name_ct, value_ct from secrets where user_id = $1 order by id', [userId]);
}

function reencrypt(userId: string, dek: Buffer, r: unknown[]): { id: string; kv: number; nameCt: Buffer; valueCt: Buffer } {
  const id = r[0] as string;
  const kv = r[1] as number;
  const name = open(dek, asBuf(r[2]), aad.secretName(userId, id, kv));
  const value = open(dek, asBuf(r[3]), aad.secretValue(userId, id, kv));
  return { id, kv, nameCt: seal(dek, name, aad.secretName(userId, id, kv)), valueCt: seal(dek, value, aad.secretValue(userId, id, kv)) };
}

/** The floor: SELECT → decrypt → encrypt → binary COPY + one UPDATE → COMMIT. */
export async function floorRun(parent: Parent, user: BenchUser, dek: Buffer): Promise<PipelineRun> {
  return parent.withConn(async (c) => {
    const t0 = performance.now();
    await c.exec('begin');
    try {
      const rows = await selectAll(c, user.id);
      const t1 = performance.now();
      const out: CopyValue[][] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = reencrypt(user.id, dek, rows[i]!);
        out[i] = [{ uuid: r.id }, { int4: r.kv }, { bytes: r.nameCt }, { bytes: r.valueCt }];
      }
      const t2 = performance.now();
      await c.exec('create temp table bench_floor (id uuid, kv int4, n bytea, v bytea) on commit drop');
      await c.copyIn('bench_floor (id, kv, n, v)', encodeBinaryCopy(out));
      await c.exec('update secrets s set key_version = f.kv, name_ct = f.n, value_ct = f.v from bench_floor f where s.id = f.id');
      const t3 = performance.now();
      await c.exec('commit');
      const t4 = performance.now();
      return { ms: t4 - t0, rows: rows.length, stages: { select: t1 - t0, crypto: t2 - t1, write: t3 - t2, commit: t4 - t3 } };
    } catch (e) {
      await c.exec('rollback').catch(() => {});
      throw e;
    }
  });
}

/** The naive baseline: the same SELECT and crypto, then one UPDATE (prepared) per row. */
export async function naiveRun(parent: Parent, user: BenchUser, dek: Buffer): Promise<PipelineRun> {
  return parent.withConn(async (c) => {
    const t0 = performance.now();
    await c.exec('begin');
    try {
      const rows = await selectAll(c, user.id);
      const t1 = performance.now();
      for (const row of rows) {
        const r = reencrypt(user.id, dek, row);
        await c.exec('update secrets set key_version = $2, name_ct = $3, value_ct = $4 where id = $1', [r.id, r.kv, r.nameCt, r.valueCt], 'bench_naive_update');
      }
      const t2 = performance.now();
      await c.exec('commit');
      const t3 = performance.now();
      return { ms: t3 - t0, rows: rows.length, stages: { select: t1 - t0, cryptoAndWrites: t2 - t1, commit: t3 - t2 } };
    } catch (e) {
      await c.exec('rollback').catch(() => {});
      throw e;
    }
  });
}
