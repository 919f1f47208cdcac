import type { SecretCipherRow } from './engine';

/**
 * The packed pre-rotation backup: the old rows of one re-encryption batch as ONE binary value
 * (`rotation_backup_chunks.data`), written in the same statement as that batch's UPDATE.
 *
 * The API's store has the database build the chunk in that statement (apps/api rotation.repo.ts
 * `writeBatch`: uuid_send, int4send, int8send, string_agg over the rows as they are before the
 * UPDATE), so the old ciphertexts never travel to the API and back. `packBackupChunk` is the
 * reference encoder of the same bytes: tests check the database's chunks against it byte for
 * byte. `unpackBackupChunk` is what restore reads chunks with.
 *
 * Format v1 — every integer big-endian, nothing optional, nothing after the last row:
 *
 *   header   u8  format               0x01
 *            u32 row count
 *   per row  16  id                   the uuid's 16 bytes (as Postgres stores and orders them)
 *            i32 key_version
 *            i64 created_at           microseconds since 1970-01-01T00:00:00Z (timestamptz's
 *            i64 updated_at           own resolution, so exact both ways)
 *            u32 name_ct length, then name_ct
 *            u32 value_ct length, then value_ct
 *
 * The ciphertexts are copied as they are (already AEAD blobs; nothing here is secret in the clear).
 * Timestamps are int64 microseconds, timestamptz's own resolution: every timestamptz before the
 * year 294247 (Postgres's own range ends at 294276) round-trips exactly.
 * `unpackBackupChunk` parses the whole value before it returns anything and refuses, with a
 * BackupChunkError, a wrong format byte, a truncated header, row or length, a row count that
 * differs from the one expected, and trailing bytes: a damaged chunk is never half-restored.
 */

export const BACKUP_CHUNK_FORMAT_V1 = 0x01;
const HEADER_BYTES = 1 + 4;
/** id + key_version + created_at + updated_at + the two length prefixes. */
const ROW_FIXED_BYTES = 16 + 4 + 8 + 8 + 4 + 4;
const TWO_32 = 2 ** 32;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A secret row as backed up: its ciphertexts plus the timestamps restore puts back. */
export interface SecretBackupRow extends SecretCipherRow {
  /** created_at, microseconds since the Unix epoch (bigint: exact over Postgres's whole range). */
  createdAtUs: bigint;
  /** updated_at, microseconds since the Unix epoch. */
  updatedAtUs: bigint;
}

/** A backup chunk that does not parse exactly; nothing of it is used. */
export class BackupChunkError extends Error {
  constructor(message: string) {
    super(`backup chunk refused: ${message}`);
    this.name = 'BackupChunkError';
  }
}

function int64(v: bigint, what: string): bigint {
  if (typeof v !== 'bigint' || v < I64_MIN || v > I64_MAX) throw new RangeError(`${what} is not an int64: ${String(v)}`);
  return v;
}

/** Pack rows (in the order given) into one v1 chunk. */
export function packBackupChunk(rows: readonly SecretBackupRow[]): Buffer {
  if (rows.length >= TWO_32) throw new RangeError('too many rows for one chunk');
  let size = HEADER_BYTES;
  for (const r of rows) size += ROW_FIXED_BYTES + r.nameCt.length + r.valueCt.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = BACKUP_CHUNK_FORMAT_V1;
  out.writeUInt32BE(rows.length, 1);
  let at = HEADER_BYTES;
  for (const r of rows) {
    if (!UUID.test(r.id)) throw new TypeError(`not a uuid: ${r.id}`);
    out.write(r.id.slice(0, 8) + r.id.slice(9, 13) + r.id.slice(14, 18) + r.id.slice(19, 23) + r.id.slice(24), at, 16, 'hex');
    out.writeInt32BE(r.keyVersion, at + 16);
    out.writeBigInt64BE(int64(r.createdAtUs, 'created_at'), at + 20);
    out.writeBigInt64BE(int64(r.updatedAtUs, 'updated_at'), at + 28);
    at += 36;
    out.writeUInt32BE(r.nameCt.length, at);
    out.set(r.nameCt, at + 4);
    at += 4 + r.nameCt.length;
    out.writeUInt32BE(r.valueCt.length, at);
    out.set(r.valueCt, at + 4);
    at += 4 + r.valueCt.length;
  }
  return out;
}

/**
 * Every row of a v1 chunk, or a BackupChunkError. `expectedRows` (the chunk's row_count column)
 * must match the count in the header. The ciphertexts returned are views into `data`.
 */
export function unpackBackupChunk(data: Uint8Array, expectedRows?: number): SecretBackupRow[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER_BYTES) throw new BackupChunkError(`truncated header (${buf.length} bytes)`);
  if (buf[0] !== BACKUP_CHUNK_FORMAT_V1) throw new BackupChunkError(`unknown format 0x${buf[0]!.toString(16).padStart(2, '0')}`);
  const count = buf.readUInt32BE(1);
  if (expectedRows !== undefined && count !== expectedRows) throw new BackupChunkError(`holds ${count} rows, ${expectedRows} expected`);
  // Every row takes at least ROW_FIXED_BYTES: a count the data cannot hold is refused up front.
  if (count > (buf.length - HEADER_BYTES) / ROW_FIXED_BYTES) throw new BackupChunkError(`truncated: ${count} rows cannot fit in ${buf.length} bytes`);
  const rows: SecretBackupRow[] = new Array(count);
  let at = HEADER_BYTES;
  const need = (n: number, i: number, what: string) => {
    if (at + n > buf.length) throw new BackupChunkError(`truncated in row ${i} (${what})`);
  };
  for (let i = 0; i < count; i++) {
    need(ROW_FIXED_BYTES - 4, i, 'fixed fields');
    const hex = buf.toString('hex', at, at + 16);
    const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    const keyVersion = buf.readInt32BE(at + 16);
    const createdAtUs = buf.readBigInt64BE(at + 20);
    const updatedAtUs = buf.readBigInt64BE(at + 28);
    at += 36;
    const nameLen = buf.readUInt32BE(at);
    at += 4;
    need(nameLen, i, 'name_ct');
    const nameCt = buf.subarray(at, at + nameLen);
    at += nameLen;
    need(4, i, 'value_ct length');
    const valueLen = buf.readUInt32BE(at);
    at += 4;
    need(valueLen, i, 'value_ct');
    const valueCt = buf.subarray(at, at + valueLen);
    at += valueLen;
    rows[i] = { id, keyVersion, createdAtUs, updatedAtUs, nameCt, valueCt };
  }
  if (at !== buf.length) throw new BackupChunkError(`${buf.length - at} trailing bytes after ${count} rows`);
  return rows;
}
