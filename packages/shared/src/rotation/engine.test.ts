import { randomBytes, randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { aad } from '../crypto/aad';
import { NONCE_BYTES, open, seal } from '../crypto/aead';
import { packBackupChunk, type SecretBackupRow, unpackBackupChunk } from './backup-chunk';
import { BATCH_BYTES, batchSealer, reencryptAll, RotationAbort, type RotationStore, type SecretCipherRow } from './engine';

/**
 * An in-memory RotationStore over `rows`, recording the statements and hook calls in order. Like
 * the SQL store, a write first packs the rows it is about to overwrite, as they are, into `chunks`.
 */
function memoryStore(rows: SecretBackupRow[], log: string[]) {
  const table = new Map(rows.map((r) => [r.id, { ...r }]));
  const chunks: { chunk: number; rowCount: number; data: Buffer }[] = [];
  const store: RotationStore = {
    lockKeyRow: async () => ({ keyVersion: 1, wrappedDek: Buffer.from('wrapped') }),
    countSecrets: async () => table.size,
    backupKeyRow: async () => void log.push('backupKeyRow'),
    readBatch: async (after, limit, maxBytes) => {
      log.push(`read:${limit}`);
      const candidates = [...table.values()]
        .filter((r) => after === null || r.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, limit);
      // As the SQL store: rows while the cumulative size stays under maxBytes, at least one.
      let bytes = 0;
      const out: SecretCipherRow[] = [];
      for (const r of candidates) {
        if (out.length > 0 && bytes + r.nameCt.length + r.valueCt.length > maxBytes) break;
        bytes += r.nameCt.length + r.valueCt.length;
        out.push({ id: r.id, keyVersion: r.keyVersion, nameCt: Buffer.from(r.nameCt), valueCt: Buffer.from(r.valueCt) });
      }
      return { rows: out, more: candidates.length === limit || out.length < candidates.length };
    },
    writeBatch: async (batch, chunk) => {
      await new Promise((r) => setTimeout(r, 1));
      log.push(`write:${batch.length}:${batch.reduce((n, r) => n + r.nameCt.length + r.valueCt.length, 0)}`);
      const old = batch.map((r) => table.get(r.id)).filter((r) => r !== undefined);
      chunks.push({ chunk, rowCount: old.length, data: packBackupChunk(old.sort((a, b) => (a.id < b.id ? -1 : 1))) });
      for (const r of batch) {
        const was = table.get(r.id)!;
        table.set(r.id, { ...was, keyVersion: r.keyVersion, nameCt: Buffer.from(r.nameCt), valueCt: Buffer.from(r.valueCt) });
      }
      return { backedUp: old.length, updated: batch.length };
    },
    countNotAt: async (kv) => [...table.values()].filter((r) => r.keyVersion !== kv).length,
  };
  return { store, table, chunks };
}

function seedRows(userId: string, dek: Buffer, n: number, valueBytes = 40) {
  const plain = new Map<string, { name: string; value: Buffer }>();
  const rows: SecretBackupRow[] = [];
  const now = BigInt(Date.now()) * 1000n;
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    const value = randomBytes(valueBytes);
    plain.set(id, { name: `s${i}`, value });
    rows.push({
      id,
      keyVersion: 1,
      createdAtUs: now - 1_000_003n * BigInt(i),
      updatedAtUs: now + BigInt(i),
      nameCt: seal(dek, Buffer.from(`s${i}`), aad.secretName(userId, id, 1)),
      valueCt: seal(dek, value, aad.secretValue(userId, id, 1)),
    });
  }
  return { rows, plain };
}

describe.each([
  ['on this thread', false],
  ['on a worker thread', true],
])('reencryptAll %s', (_label, cryptoWorker) => {
  const userId = randomUUID();

  it('re-encrypts every row, proven by aead.open, in batches with the serial hook sequence', async () => {
    const oldDek = randomBytes(32);
    const newDek = randomBytes(32);
    const { rows, plain } = seedRows(userId, oldDek, 25);
    const log: string[] = [];
    const { store, table } = memoryStore(rows, log);
    const r = await reencryptAll({
      tokenId: 't',
      userId,
      oldDek,
      newDek,
      fromKeyVersion: 1,
      toKeyVersion: 2,
      expectedWrappedDek: Buffer.from('wrapped'),
      batchSize: 10,
      store,
      cryptoWorker,
      hooks: { afterBatch: (_t, i) => void log.push(`afterBatch:${i}`) },
    });
    expect(r).toMatchObject({ count: 25, batches: 3 });
    // afterBatch(i) follows write i and precedes write i+1.
    expect(log.filter((l) => !l.startsWith('read')).map((l) => l.replace(/^(write:\d+):\d+$/, '$1'))).toEqual([
      'backupKeyRow',
      'write:10',
      'afterBatch:0',
      'write:10',
      'afterBatch:1',
      'write:5',
      'afterBatch:2',
    ]);
    const nonces = new Set<string>();
    for (const [id, p] of plain) {
      const row = table.get(id)!;
      expect(row.keyVersion).toBe(2);
      expect(open(newDek, row.nameCt, aad.secretName(userId, id, 2)).toString()).toBe(p.name);
      expect(open(newDek, row.valueCt, aad.secretValue(userId, id, 2))).toEqual(p.value);
      expect(() => open(oldDek, row.valueCt, aad.secretValue(userId, id, 1))).toThrow();
      nonces.add(row.nameCt.subarray(1, 1 + NONCE_BYTES).toString('hex')).add(row.valueCt.subarray(1, 1 + NONCE_BYTES).toString('hex'));
    }
    expect(nonces.size).toBe(50);
  });

  it('a row that does not open aborts with DECRYPT_FAILED after the previous batch, and writes nothing more', async () => {
    const oldDek = randomBytes(32);
    const { rows } = seedRows(userId, oldDek, 25);
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    rows[13]!.valueCt[20]! ^= 1; // in batch 1
    const log: string[] = [];
    const { store } = memoryStore(rows, log);
    const run = reencryptAll({
      tokenId: 't',
      userId,
      oldDek,
      newDek: randomBytes(32),
      fromKeyVersion: 1,
      toKeyVersion: 2,
      expectedWrappedDek: Buffer.from('wrapped'),
      batchSize: 10,
      store,
      cryptoWorker,
      hooks: { afterBatch: (_t, i) => void log.push(`afterBatch:${i}`) },
    });
    await expect(run).rejects.toMatchObject({ name: 'RotationAbort', reasonCode: 'DECRYPT_FAILED' });
    await expect(run).rejects.toBeInstanceOf(RotationAbort);
    expect(log.filter((l) => !l.startsWith('read')).map((l) => l.replace(/^(write:\d+):\d+$/, '$1'))).toEqual(['backupKeyRow', 'write:10', 'afterBatch:0']);
  });

  const run = (store: RotationStore, oldDek: Buffer, batchSize = 10) =>
    reencryptAll({
      tokenId: 't',
      userId,
      oldDek,
      newDek: randomBytes(32),
      fromKeyVersion: 1,
      toKeyVersion: 2,
      expectedWrappedDek: Buffer.from('wrapped'),
      batchSize,
      store,
      cryptoWorker,
    });

  it('batch i is written with chunk number i, and the chunks hold every old row once, in id order', async () => {
    const oldDek = randomBytes(32);
    const { rows } = seedRows(userId, oldDek, 25);
    const original = rows
      .map((r) => ({ ...r, nameCt: Buffer.from(r.nameCt), valueCt: Buffer.from(r.valueCt) }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const { store, chunks } = memoryStore(rows, []);
    expect(await run(store, oldDek)).toMatchObject({ count: 25, batches: 3 });
    expect(chunks.map((c) => [c.chunk, c.rowCount])).toEqual([
      [0, 10],
      [1, 10],
      [2, 5],
    ]);
    expect(chunks.flatMap((c) => unpackBackupChunk(c.data, c.rowCount))).toEqual(original);
  });

  it('a user with no secrets: no batch, no chunk, nothing written', async () => {
    const log: string[] = [];
    const { store, chunks } = memoryStore([], log);
    const r = await run(store, randomBytes(32));
    expect(r).toMatchObject({ count: 0, batches: 0 });
    expect(chunks).toEqual([]);
    expect(log).toEqual(['backupKeyRow', 'read:10']);
  });

  it.each([
    ['backup chunk', { backedUp: -1, updated: 0 }],
    ['update', { backedUp: 0, updated: -1 }],
  ] as const)('a write whose %s stored fewer rows than the batch aborts with COUNT_MISMATCH', async (_what, short) => {
    const oldDek = randomBytes(32);
    const { store } = memoryStore(seedRows(userId, oldDek, 12).rows, []);
    const write = store.writeBatch;
    store.writeBatch = async (batch, chunk) => {
      const w = await write(batch, chunk);
      return { backedUp: w.backedUp + short.backedUp, updated: w.updated + short.updated };
    };
    await expect(run(store, oldDek)).rejects.toMatchObject({ name: 'RotationAbort', reasonCode: 'COUNT_MISMATCH' });
  });

  it('bounds every batch in bytes, the first included: big secrets take smaller batches, never more rows than the batch size', async () => {
    const oldDek = randomBytes(32);
    const { rows } = seedRows(userId, oldDek, 40, 64 * 1024);
    const log: string[] = [];
    const { store } = memoryStore(rows, log);
    const r = await reencryptAll({
      tokenId: 't',
      userId,
      oldDek,
      newDek: randomBytes(32),
      fromKeyVersion: 1,
      toKeyVersion: 2,
      expectedWrappedDek: Buffer.from('wrapped'),
      batchSize: 20,
      store,
      cryptoWorker,
    });
    expect(r.count).toBe(40);
    const writes = log.filter((l) => l.startsWith('write')).map((l) => l.split(':').slice(1).map(Number) as [number, number]);
    expect(writes.reduce((n, [rows]) => n + rows, 0)).toBe(40);
    for (const [rows, bytes] of writes) {
      expect(rows).toBeLessThanOrEqual(20);
      expect(bytes).toBeLessThanOrEqual(BATCH_BYTES);
    }
    // 64 KiB values: about 15 per MiB, so the 40 rows need 3 batches, the first one bounded too.
    expect(writes[0]![0]).toBe(Math.floor(BATCH_BYTES / (64 * 1024 + 29 + 31)));
    expect(writes.length).toBe(3);
  });
});

describe('reencryptAll on a worker thread leaves no key or plaintext copy behind (issue 10 item 7)', () => {
  const userId = randomUUID();
  const rotateWith = (rows: SecretBackupRow[], oldDek: Buffer) =>
    reencryptAll({
      tokenId: 't',
      userId,
      oldDek,
      newDek: randomBytes(32),
      fromKeyVersion: 1,
      toKeyVersion: 2,
      expectedWrappedDek: Buffer.from('wrapped'),
      batchSize: 10,
      store: memoryStore(rows, []).store,
      cryptoWorker: true,
    });

  it('hands both DEKs to the worker by transfer: the copies made for it are detached on this thread', async () => {
    const post = vi.spyOn(Worker.prototype, 'postMessage');
    try {
      const oldDek = randomBytes(32);
      await rotateWith(seedRows(userId, oldDek, 3).rows, oldDek);
      const call = post.mock.calls.find(([m]) => (m as { op?: string }).op === 'keys');
      expect(call).toBeDefined();
      const [msg, transfer] = call! as [{ oldKey: Uint8Array; newKey: Uint8Array }, ArrayBuffer[]];
      expect(transfer).toEqual(expect.arrayContaining([msg.oldKey.buffer, msg.newKey.buffer]));
      expect(msg.oldKey.byteLength).toBe(0);
      expect(msg.newKey.byteLength).toBe(0);
    } finally {
      post.mockRestore();
    }
  });

  it('a failing batch: the batch read ahead of it, re-encrypted but never verified, has its plaintexts wiped', async () => {
    // Calls through: records every message the worker sends back (each result's out buffer).
    const emit = vi.spyOn(Worker.prototype, 'emit');
    try {
      const oldDek = randomBytes(32);
      const { rows } = seedRows(userId, oldDek, 25, 200);
      rows.sort((a, b) => (a.id < b.id ? -1 : 1));
      rows[3]!.valueCt[20]! ^= 1; // batch 0 fails; batch 1 was already sent to the worker
      await expect(rotateWith(rows, oldDek)).rejects.toMatchObject({ reasonCode: 'DECRYPT_FAILED' });
      const seen = emit.mock.calls.filter(([event, m]) => event === 'message' && (m as { out?: Uint8Array } | undefined)?.out).map(([, m]) => (m as { out: Uint8Array }).out);
      expect(seen.length).toBeGreaterThanOrEqual(1);
      for (const out of seen) expect(out.every((b) => b === 0)).toBe(true);
    } finally {
      emit.mockRestore();
    }
  });
});

describe('batchSealer', () => {
  it('seals in aead.ts format with distinct nonces, and refuses past its count', () => {
    const key = randomBytes(32);
    const s = batchSealer(3);
    const blobs = [0, 1, 2].map((i) => s(key, Buffer.from(`p${i}`), `ctx${i}`));
    for (const [i, b] of blobs.entries()) expect(open(key, b, `ctx${i}`).toString()).toBe(`p${i}`);
    expect(new Set(blobs.map((b) => b.subarray(1, 1 + NONCE_BYTES).toString('hex'))).size).toBe(3);
    expect(() => s(key, Buffer.from('x'), 'ctx')).toThrow(RangeError);
    expect(() => batchSealer(1)(key, Buffer.from('x'), '')).toThrow(TypeError);
  });
});
