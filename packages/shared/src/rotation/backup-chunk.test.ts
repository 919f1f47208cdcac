import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BACKUP_CHUNK_FORMAT_V1, BackupChunkError, packBackupChunk, type SecretBackupRow, unpackBackupChunk } from './backup-chunk';

const row = (over: Partial<SecretBackupRow> = {}): SecretBackupRow => ({
  id: randomUUID(),
  keyVersion: 7,
  createdAtUs: 1_767_225_600_123_456n,
  updatedAtUs: 1_767_225_601_000_001n,
  nameCt: randomBytes(40),
  valueCt: randomBytes(300),
  ...over,
});

describe('backup chunk format v1', () => {
  it('round-trips rows exactly: ids, key versions, microsecond timestamps, ciphertexts (incl. empty and edge values)', () => {
    const rows = [
      row(),
      row({ id: '00000000-0000-0000-0000-000000000000', keyVersion: 0, createdAtUs: 0n, updatedAtUs: -1n, nameCt: Buffer.alloc(0), valueCt: Buffer.alloc(0) }),
      row({ id: 'ffffffff-ffff-4fff-bfff-ffffffffffff', keyVersion: 2 ** 31 - 1, createdAtUs: 2n ** 63n - 1n, updatedAtUs: -(2n ** 63n) }),
      // Postgres's earliest timestamptz (4713-11-24 BC) and one in the year 294000, in microseconds since 1970.
      row({ createdAtUs: -210_866_803_200_000_000n, updatedAtUs: 9_215_614_080_000_000_123n }),
      row({ createdAtUs: -946_684_800_000_001n, valueCt: randomBytes(64 * 1024 + 29) }),
    ];
    const data = packBackupChunk(rows);
    expect(data[0]).toBe(BACKUP_CHUNK_FORMAT_V1);
    expect(data.readUInt32BE(1)).toBe(rows.length);
    const back = unpackBackupChunk(data, rows.length);
    expect(back).toEqual(rows.map((r) => ({ ...r, id: r.id.toLowerCase() })));
    // The ids come back in Postgres's text form whatever case they were given in.
    expect(unpackBackupChunk(packBackupChunk([row({ id: 'ABCDEF01-2345-4678-9ABC-DEF012345678' })]))[0]!.id).toBe('abcdef01-2345-4678-9abc-def012345678');
  });

  it('an empty chunk is the 5-byte header', () => {
    const data = packBackupChunk([]);
    expect(data).toEqual(Buffer.from([BACKUP_CHUNK_FORMAT_V1, 0, 0, 0, 0]));
    expect(unpackBackupChunk(data, 0)).toEqual([]);
  });

  it('refuses every truncation (each prefix) with a clear error, never a partial result', () => {
    const data = packBackupChunk([row({ nameCt: randomBytes(5), valueCt: randomBytes(9) }), row({ nameCt: randomBytes(3), valueCt: randomBytes(4) })]);
    for (let n = 0; n < data.length; n++) {
      expect(() => unpackBackupChunk(data.subarray(0, n)), `prefix of ${n} bytes`).toThrow(BackupChunkError);
    }
    expect(() => unpackBackupChunk(data.subarray(0, 3))).toThrow(/backup chunk refused: truncated header/);
    expect(() => unpackBackupChunk(data.subarray(0, data.length - 1))).toThrow(/truncated in row 1 \(value_ct\)/);
  });

  it('refuses trailing bytes, a wrong format byte, a row count other than expected, and lengths past the end', () => {
    const data = packBackupChunk([row(), row()]);
    expect(() => unpackBackupChunk(Buffer.concat([data, Buffer.from([0])]))).toThrow(/1 trailing bytes after 2 rows/);
    const wrongFormat = Buffer.from(data);
    wrongFormat[0] = 0x02;
    expect(() => unpackBackupChunk(wrongFormat)).toThrow(/unknown format 0x02/);
    expect(() => unpackBackupChunk(data, 3)).toThrow(/holds 2 rows, 3 expected/);
    const moreRows = Buffer.from(data);
    moreRows.writeUInt32BE(3, 1);
    expect(() => unpackBackupChunk(moreRows)).toThrow(BackupChunkError);
    const fewerRows = Buffer.from(data);
    fewerRows.writeUInt32BE(1, 1);
    expect(() => unpackBackupChunk(fewerRows)).toThrow(/trailing bytes/);
    const hugeCount = Buffer.from(data);
    hugeCount.writeUInt32BE(0xffffffff, 1);
    expect(() => unpackBackupChunk(hugeCount)).toThrow(/cannot fit/);
    const longName = Buffer.from(data);
    longName.writeUInt32BE(0xffffff00, 5 + 36);
    expect(() => unpackBackupChunk(longName)).toThrow(/truncated in row 0 \(name_ct\)/);
  });

  it('pack refuses what it cannot represent exactly', () => {
    expect(() => packBackupChunk([row({ id: 'not-a-uuid' })])).toThrow(TypeError);
    expect(() => packBackupChunk([row({ createdAtUs: 2n ** 63n })])).toThrow(RangeError);
    expect(() => packBackupChunk([row({ updatedAtUs: 1.5 as unknown as bigint })])).toThrow(RangeError);
    expect(() => packBackupChunk([row({ keyVersion: 2 ** 31 })])).toThrow(RangeError);
  });
});
