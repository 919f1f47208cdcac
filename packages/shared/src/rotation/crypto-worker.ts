import { Worker } from 'node:worker_threads';
import { aad } from '../crypto/aad';
import { BLOB_FORMAT_V1, NONCE_BYTES, TAG_BYTES } from '../crypto/aead';
import { RotationAbort, type SecretCipherRow } from './types';
import { proveReencrypted } from './verify';

/**
 * The rotation's re-encryption off the event loop (engine.ts's reencryptAll uses it for large
 * vaults): a worker thread that decrypts and re-encrypts batches, and this thread's half, which
 * proves every blob the worker made with aead.open before it can be written.
 */
/** Below this many secrets a rotation re-encrypts on its own thread (a worker costs ~30 ms). */
export const WORKER_MIN_ROWS = 8_000;
const OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;

/**
 * The worker's code (plain JS, so it loads the same under tsx, vitest and compiled output). It
 * only transforms bytes: for each row it opens the old name and value under the AAD strings it is
 * given (made here by aad.ts), seals them under the new key with fresh CSPRNG nonces (one
 * randomFillSync per batch) in aead.ts's blob format, and returns, per row, the new name and
 * value ciphertexts followed by the plaintexts they must open to. This thread then proves every
 * blob with aead.open before it can be written, and wipes the plaintexts.
 */
const WORKER_SOURCE = `(async () => {
  const { parentPort } = await import('node:worker_threads');
  const { createCipheriv, createDecipheriv, randomFillSync } = await import('node:crypto');
  const FORMAT = ${BLOB_FORMAT_V1}, NONCE = ${NONCE_BYTES}, TAG = ${TAG_BYTES}, OVERHEAD = 1 + NONCE + TAG;
  const HEADER = Buffer.from([FORMAT]);
  let oldKey = null, newKey = null;
  const aadOf = (s) => Buffer.concat([HEADER, Buffer.from(s, 'utf8')]);
  const open = (blob, aad) => {
    if (blob.length < OVERHEAD || blob[0] !== FORMAT) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', oldKey, blob.subarray(1, 1 + NONCE), { authTagLength: TAG });
      d.setAAD(aadOf(aad));
      d.setAuthTag(blob.subarray(blob.length - TAG));
      return Buffer.concat([d.update(blob.subarray(1 + NONCE, blob.length - TAG)), d.final()]);
    } catch {
      return null;
    }
  };
  const sealInto = (out, at, nonce, pt, aad) => {
    const c = createCipheriv('aes-256-gcm', newKey, nonce, { authTagLength: TAG });
    c.setAAD(aadOf(aad));
    out[at] = FORMAT;
    out.set(nonce, at + 1);
    const ct = c.update(pt);
    const fin = c.final();
    out.set(ct, at + 1 + NONCE);
    out.set(fin, at + 1 + NONCE + ct.length);
    out.set(c.getAuthTag(), at + 1 + NONCE + ct.length + fin.length);
    return at + OVERHEAD + pt.length;
  };
  parentPort.on('message', (m) => {
    if (m.op === 'keys') {
      oldKey = Buffer.from(m.oldKey);
      newKey = Buffer.from(m.newKey);
      m.oldKey.fill(0);
      m.newKey.fill(0);
      return;
    }
    if (m.op === 'wipe') {
      if (oldKey) oldKey.fill(0);
      if (newKey) newKey.fill(0);
      parentPort.postMessage({ op: 'wiped' });
      return;
    }
    const input = Buffer.from(m.input.buffer, m.input.byteOffset, m.input.byteLength);
    const rows = m.lens.length / 2;
    let size = 0;
    for (const l of m.lens) size += 2 * l - OVERHEAD;
    const out = Buffer.from(new ArrayBuffer(size));
    const nonces = randomFillSync(Buffer.allocUnsafe(rows * 2 * NONCE));
    let inAt = 0;
    let outAt = 0;
    for (let i = 0; i < rows; i++) {
      const nl = m.lens[2 * i], vl = m.lens[2 * i + 1];
      const id = m.ids[i];
      const from = m.aad[m.kvs[i]];
      const name = open(input.subarray(inAt, inAt + nl), from.name[0] + id + from.name[1]);
      const value = name && open(input.subarray(inAt + nl, inAt + nl + vl), from.value[0] + id + from.value[1]);
      inAt += nl + vl;
      if (!name || !value) {
        if (name) name.fill(0);
        out.fill(0);
        parentPort.postMessage({ seq: m.seq, failed: i });
        return;
      }
      const to = m.aad[m.toKv];
      outAt = sealInto(out, outAt, nonces.subarray(2 * i * NONCE, (2 * i + 1) * NONCE), name, to.name[0] + id + to.name[1]);
      outAt = sealInto(out, outAt, nonces.subarray((2 * i + 1) * NONCE, (2 * i + 2) * NONCE), value, to.value[0] + id + to.value[1]);
      out.set(name, outAt);
      outAt += name.length;
      out.set(value, outAt);
      outAt += value.length;
      name.fill(0);
      value.fill(0);
    }
    parentPort.postMessage({ seq: m.seq, out }, [out.buffer]);
  });
})();`;

/** aad.ts's secret name and value AAD for (user, kv), split around the secret id. */
function aadTemplates(userId: string, kv: number): { name: [string, string]; value: [string, string] } {
  const ID = '00000000-0000-0000-0000-000000000000';
  const split = (full: string): [string, string] => {
    const at = full.indexOf(ID);
    if (at < 0 || full.indexOf(ID, at + 1) >= 0) throw new Error('unexpected AAD format');
    return [full.slice(0, at), full.slice(at + ID.length)];
  };
  return { name: split(aad.secretName(userId, ID, kv)), value: split(aad.secretValue(userId, ID, kv)) };
}

/** One worker thread for one rotation; holds copies of both DEKs until close() wipes them. */
export class CryptoWorker {
  private readonly worker: Worker;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (m: { out?: Uint8Array; failed?: number }) => void; reject: (e: unknown) => void }>();
  private failure: Error | null = null;
  private wiped: (() => void) | null = null;

  constructor(oldDek: Buffer, newDek: Buffer) {
    // A small heap: the worker's garbage is per-row buffers and strings, collected young.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 } });
    this.worker.on('message', (m: { op?: string; seq?: number; out?: Uint8Array; failed?: number }) => {
      if (m.op === 'wiped') return this.wiped?.();
      const p = this.pending.get(m.seq!);
      this.pending.delete(m.seq!);
      p?.resolve(m);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.wiped?.();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('the re-encryption worker stopped')));
    // Transferred, not cloned: the copies made here move to the worker (which wipes them after
    // taking its own), so no stray copy of either DEK stays behind on this thread.
    const oldKey = Uint8Array.from(oldDek);
    const newKey = Uint8Array.from(newDek);
    this.worker.postMessage({ op: 'keys', oldKey, newKey }, [oldKey.buffer, newKey.buffer]);
  }

  /**
   * Old ciphertexts in; new ciphertexts and plaintexts (packed) out. The AAD strings are aad.ts's,
   * passed as templates per key version (the text around the secret id) to spare a string per blob.
   */
  run(rows: SecretCipherRow[], userId: string, toKv: number): Promise<{ out?: Uint8Array; failed?: number }> {
    if (this.failure) return Promise.reject(this.failure);
    let size = 0;
    for (const r of rows) size += r.nameCt.length + r.valueCt.length;
    const input = new Uint8Array(size);
    const lens = new Int32Array(rows.length * 2);
    let at = 0;
    rows.forEach((r, i) => {
      input.set(r.nameCt, at);
      input.set(r.valueCt, at + r.nameCt.length);
      at += r.nameCt.length + r.valueCt.length;
      lens[2 * i] = r.nameCt.length;
      lens[2 * i + 1] = r.valueCt.length;
    });
    const kvs = rows.map((r) => r.keyVersion);
    const templates: Record<number, { name: [string, string]; value: [string, string] }> = {};
    for (const kv of new Set([...kvs, toKv])) templates[kv] = aadTemplates(userId, kv);
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.worker.postMessage({ seq, input, lens, ids: rows.map((r) => r.id), kvs, toKv, aad: templates }, [input.buffer]);
    });
  }

  /** Wipe the worker's key copies (best effort, as wipe() is), then stop it. */
  async close(): Promise<void> {
    if (!this.failure) {
      const ack = new Promise<void>((resolve) => {
        this.wiped = resolve;
      });
      this.worker.postMessage({ op: 'wipe' });
      await Promise.race([ack, new Promise((r) => setTimeout(r, 1_000).unref())]);
    }
    await this.worker.terminate();
  }
}

/**
 * This thread's half of a worker batch: every returned blob must open with aead.open, under the
 * new key and its AAD, to exactly the plaintext the worker decrypted from the old blob. The
 * plaintexts are wiped here; the rows returned point into the worker's output buffer.
 */
export function verifyWorkerBatch(userId: string, rows: SecretCipherRow[], result: { out?: Uint8Array; failed?: number }, newDek: Buffer, toKv: number): SecretCipherRow[] {
  if (result.failed !== undefined || !result.out) {
    const r = rows[result.failed ?? 0]!;
    throw new RotationAbort('DECRYPT_FAILED', `secret ${r.id} does not open under the current key`);
  }
  const out = Buffer.from(result.out.buffer, result.out.byteOffset, result.out.byteLength);
  const done: SecretCipherRow[] = new Array(rows.length);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const nl = r.nameCt.length;
    const vl = r.valueCt.length;
    const nameCt = out.subarray(at, at + nl);
    const valueCt = out.subarray(at + nl, at + nl + vl);
    const name = out.subarray(at + nl + vl, at + 2 * nl + vl - OVERHEAD);
    const value = out.subarray(at + 2 * nl + vl - OVERHEAD, at + 2 * (nl + vl) - 2 * OVERHEAD);
    at += 2 * (nl + vl) - 2 * OVERHEAD;
    try {
      proveReencrypted(userId, r.id, toKv, newDek, nameCt, valueCt, name, value);
    } catch (e) {
      out.fill(0);
      throw e;
    } finally {
      name.fill(0);
      value.fill(0);
    }
    done[i] = { id: r.id, keyVersion: toKv, nameCt, valueCt };
  }
  return done;
}
