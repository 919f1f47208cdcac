import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { aad } from '../crypto/aad';
import { BLOB_FORMAT_V1, KEY_BYTES, NONCE_BYTES, open, seal, TAG_BYTES } from '../crypto/aead';

import { CryptoWorker, verifyWorkerBatch, WORKER_MIN_ROWS } from './crypto-worker';
import { RotationAbort, type SecretCipherRow } from './types';
import { proveReencrypted } from './verify';

export { RotationAbort, type SecretCipherRow, WORKER_MIN_ROWS };

/**
 * The atomic re-encryption core (DESIGN §3). It knows nothing of HTTP or SQL: it drives a
 * RotationStore that the caller has bound to ONE open database transaction, so everything it
 * does commits or rolls back together. The caller owns BEGIN/COMMIT, the key row write, the
 * token transition and the audit event.
 */


export interface RotationStore {
  /** SELECT … FOR UPDATE the user's key row; returns what is current under the lock. */
  lockKeyRow(): Promise<{ keyVersion: number; wrappedDek: Buffer }>;
  /** Number of the user's secret rows (under the key row lock, writers are excluded). */
  countSecrets(): Promise<number>;
  /** Back up the key row (the secrets are backed up batch by batch, by writeBatch). */
  backupKeyRow(): Promise<void>;
  /**
   * The next batch in id order (keyset pagination), ids strictly after `afterId`: at most `limit`
   * rows, and no more rows than fit in `maxBytes` of ciphertext (but always at least one row).
   * `more`: rows may follow (the batch was cut by the row or the byte bound).
   */
  readBatch(afterId: string | null, limit: number, maxBytes: number): Promise<{ rows: SecretCipherRow[]; more: boolean }>;
  /**
   * Write a batch with a fixed number of statements (never one per row), and in the same
   * statement back it up: the rows with these ids as they are before this write (under the key
   * row lock: exactly the rows read) packed into ONE backup chunk numbered `chunk`, in the format
   * of backup-chunk.ts. Returns what the database stored: the rows the chunk holds and the rows
   * updated.
   */
  writeBatch(rows: SecretCipherRow[], chunk: number): Promise<{ backedUp: number; updated: number }>;
  /** Rows not at `keyVersion` (must be 0 after the rewrite: completeness guard). */
  countNotAt(keyVersion: number): Promise<number>;
}

/** Fault points at each stage boundary; tests inject failures and pauses here. */
export interface RotationHooks {
  afterClaim?: (tokenId: string) => Promise<void> | void;
  afterLock?: (tokenId: string) => Promise<void> | void;
  afterBackup?: (tokenId: string) => Promise<void> | void;
  /** After batch `index` (0-based) has been written. */
  afterBatch?: (tokenId: string, index: number) => Promise<void> | void;
  beforeCommit?: (tokenId: string) => Promise<void> | void;
  afterCommit?: (tokenId: string) => Promise<void> | void;
}


export interface ReencryptInput {
  tokenId: string;
  userId: string;
  oldDek: Buffer;
  newDek: Buffer;
  fromKeyVersion: number;
  toKeyVersion: number;
  /** The wrapped DEK the caller unlocked before the transaction: re-checked under the lock. */
  expectedWrappedDek: Buffer;
  batchSize: number;
  store: RotationStore;
  hooks?: RotationHooks;
  /**
   * Decrypt and re-encrypt on a worker thread (verification stays here, with aead.open).
   * Default: when there are at least WORKER_MIN_ROWS secrets.
   */
  cryptoWorker?: boolean;
}

export interface ReencryptResult {
  count: number;
  batches: number;
  /** SHA-256 over (id, name_ct, value_ct) of every row as written, in id order. */
  digest: Buffer;
}

/** Digest of a user's secret rows, in id order; restore compares it to refuse if anything changed. */
export function createRowsDigest() {
  const h = createHash('sha256');
  return {
    add(r: Pick<SecretCipherRow, 'id' | 'nameCt' | 'valueCt'>) {
      h.update(r.id).update(lenPrefix(r.nameCt)).update(r.nameCt).update(lenPrefix(r.valueCt)).update(r.valueCt);
    },
    digest: () => h.digest(),
  };
}
const lenPrefix = (b: Buffer) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(b.length);
  return p;
};

export type SealFn = (key: Uint8Array, plaintext: Uint8Array, aad: string) => Buffer;

const HEADER = Buffer.from([BLOB_FORMAT_V1]);

/**
 * aead.seal for a batch of `count` blobs: the same blob format ([format][nonce][ct][tag], AAD =
 * format byte + aad), each nonce a fresh 96-bit draw from the CSPRNG, but the draws are taken in
 * one randomFillSync for the whole batch instead of one call per blob (a third of seal's cost at
 * 10^5 blobs). A nonce is never handed out twice; past `count` blobs it refuses. Whatever it
 * produces is opened again with aead.open before it is written (reencryptRow's verify step).
 */
export function batchSealer(count: number): SealFn {
  const pool = randomFillSync(Buffer.allocUnsafe(count * NONCE_BYTES));
  let used = 0;
  return (key, plaintext, aadText) => {
    if (key.length !== KEY_BYTES) throw new TypeError('AES-256-GCM needs a 32-byte key');
    if (typeof aadText !== 'string' || aadText.length === 0) throw new TypeError('associated data is required');
    if (used >= count) throw new RangeError('nonce pool exhausted');
    const nonce = pool.subarray(used * NONCE_BYTES, (used + 1) * NONCE_BYTES);
    used++;
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.concat([HEADER, Buffer.from(aadText, 'utf8')]));
    const ct = cipher.update(plaintext);
    const fin = cipher.final();
    return Buffer.concat([HEADER, nonce, ct, fin, cipher.getAuthTag()], 1 + NONCE_BYTES + ct.length + fin.length + TAG_BYTES);
  };
}

/**
 * Re-encrypt one row: open under the old version's AAD, seal under the new, prove it opens.
 * `sealWith` defaults to aead.seal; reencryptAll passes a batchSealer. Either way the proof is
 * aead.open, the same code every reader uses.
 */
export function reencryptRow(userId: string, r: SecretCipherRow, oldDek: Buffer, newDek: Buffer, toKv: number, sealWith: SealFn = seal): SecretCipherRow {
  let name: Buffer;
  let value: Buffer;
  try {
    name = open(oldDek, r.nameCt, aad.secretName(userId, r.id, r.keyVersion));
    value = open(oldDek, r.valueCt, aad.secretValue(userId, r.id, r.keyVersion));
  } catch {
    throw new RotationAbort('DECRYPT_FAILED', `secret ${r.id} does not open under the current key`);
  }
  const nameCt = sealWith(newDek, name, aad.secretName(userId, r.id, toKv));
  const valueCt = sealWith(newDek, value, aad.secretValue(userId, r.id, toKv));
  // Verify before commit: every new ciphertext must open to exactly the old plaintext.
  try {
    proveReencrypted(userId, r.id, toKv, newDek, nameCt, valueCt, name, value);
  } finally {
    name.fill(0);
    value.fill(0);
  }
  return { id: r.id, keyVersion: toKv, nameCt, valueCt };
}

// ---------------------------------------------------------------------------------------------

/**
 * Ciphertext bytes a batch carries at most. The batch size is a row count, and rows run from
 * ~100 B to the 64 KiB value limit: the store cuts every read at this many bytes too (at least
 * one row), which bounds what the pipeline holds in memory, from the first batch on, whatever the
 * secrets' sizes. Small secrets keep the configured row count.
 */
export const BATCH_BYTES = 1 << 20;

/**
 * lock key row → re-check it → count → back up the key row → re-encrypt in batches (verify each;
 * each batch's write also stores that batch's old rows as one packed backup chunk) →
 * completeness guard. Runs inside the caller's transaction; throws RotationAbort to roll back.
 */
export async function reencryptAll(input: ReencryptInput): Promise<ReencryptResult> {
  const { store, hooks = {}, tokenId } = input;
  const locked = await store.lockKeyRow();
  if (locked.keyVersion !== input.fromKeyVersion || !locked.wrappedDek.equals(input.expectedWrappedDek)) {
    throw new RotationAbort('KEY_CHANGED', 'the key row changed since the credentials were checked');
  }
  await hooks.afterLock?.(tokenId);
  const expected = await store.countSecrets();
  await store.backupKeyRow();
  await hooks.afterBackup?.(tokenId);

  // Pipelined: while batch i is re-encrypted (on a worker thread for big rotations) and verified
  // here, the database is already reading the next batch and still writing batch i-1, so crypto
  // and I/O overlap. The store's statements stay one read and one write per batch (the write also
  // stores the batch's old rows as its backup chunk), sent in order on the one transaction, and a
  // few batches of about BATCH_BYTES each are in memory (RSS stays
  // flat whatever N is). The hooks see exactly the serial sequence: afterBatch(i) runs once batch
  // i is written and before batch i+1's write is sent, and a batch that fails to re-encrypt is
  // reported only after the previous batch's hook.
  const digest = createRowsDigest();
  let count = 0;
  let batches = 0;
  /** Writes sent so far: the next batch's index and backup chunk number. */
  let sent = 0;
  let backedUp = 0;
  let updated = 0;
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    p.then(
      () => inflight.delete(p),
      () => inflight.delete(p),
    );
    return p;
  };
  let writing: Promise<{ backedUp: number; updated: number }> | null = null;
  const written = async () => {
    if (!writing) return;
    const w = await writing;
    writing = null;
    backedUp += w.backedUp;
    updated += w.updated;
    await hooks.afterBatch?.(tokenId, batches);
    batches++;
  };
  const { userId, oldDek, newDek, toKeyVersion: toKv } = input;
  const worker = (input.cryptoWorker ?? expected >= WORKER_MIN_ROWS) ? new CryptoWorker(oldDek, newDek) : null;
  type Pending = { rows: SecretCipherRow[]; enc: Promise<{ out?: Uint8Array; failed?: number }> | null };
  /** Every worker result of this rotation: on failure, the ones not yet verified still hold plaintexts. */
  const results: Promise<{ out?: Uint8Array; failed?: number }>[] = [];
  /** Batch i's rows, with its re-encryption already started on the worker. */
  const dispatch = (rows: SecretCipherRow[]): Pending => {
    if (!worker) return { rows, enc: null };
    const enc = track(worker.run(rows, userId, toKv));
    results.push(enc);
    return { rows, enc };
  };
  /** Re-encrypted and verified rows of a batch (on this thread without a worker). */
  const finish = async (b: Pending): Promise<SecretCipherRow[]> => {
    if (!b.enc) {
      const sealWith = batchSealer(b.rows.length * 2);
      return b.rows.map((r) => reencryptRow(userId, r, oldDek, newDek, toKv, sealWith));
    }
    return verifyWorkerBatch(userId, b.rows, await b.enc, newDek, toKv);
  };
  const limit = input.batchSize;
  let reading: Promise<{ rows: SecretCipherRow[]; more: boolean }> | null = track(store.readBatch(null, limit, BATCH_BYTES));
  /** The next batch (its successor's read already sent), or null at the end. */
  const pull = async (): Promise<Pending | null> => {
    if (!reading) return null;
    const { rows, more } = await reading;
    reading = null;
    if (rows.length === 0) return null;
    if (more) reading = track(store.readBatch(rows[rows.length - 1]!.id, limit, BATCH_BYTES));
    return dispatch(rows);
  };
  try {
    let current = await pull();
    while (current) {
      const ahead = await pull();
      let out: SecretCipherRow[] | null = null;
      let failure: unknown = null;
      try {
        out = await finish(current);
      } catch (e) {
        failure = e;
      }
      await written();
      if (!out) throw failure;
      // Batch i's write also stores batch i's old rows as backup chunk i.
      writing = track(store.writeBatch(out, sent++));
      for (const r of out) digest.add(r);
      count += out.length;
      current = ahead;
    }
    await written();
  } catch (e) {
    // Statements already sent settle before the caller rolls the transaction back. A batch the
    // worker finished but this thread never verified (the one read ahead of a failing batch)
    // still carries its plaintexts: wipe every result buffer (ciphertexts too: all discarded).
    await Promise.allSettled([...inflight]);
    for (const r of await Promise.allSettled(results)) if (r.status === 'fulfilled') r.value.out?.fill(0);
    throw e;
  } finally {
    await worker?.close();
  }
  // Completeness: every counted secret is in a backup chunk the database stored, was re-encrypted
  // and was updated.
  if (backedUp !== expected) throw new RotationAbort('COUNT_MISMATCH', `backed up ${backedUp} of ${expected} secrets`);
  if (count !== expected || updated !== expected) throw new RotationAbort('COUNT_MISMATCH', `re-encrypted ${count} and updated ${updated} of ${expected} secrets`);
  const stale = await store.countNotAt(input.toKeyVersion);
  if (stale !== 0) throw new RotationAbort('STALE_ROWS', `${stale} secrets are not at the new key version`);
  return { count, batches, digest: digest.digest() };
}
