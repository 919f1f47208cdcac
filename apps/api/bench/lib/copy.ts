/**
 * Binary COPY for the benchmark's fast paths (seeding, and the floor's bulk write): the rows are
 * encoded once in PostgreSQL's binary COPY format and streamed in, on node-postgres through
 * COPY … FROM STDIN and on PGlite through its `/dev/blob` device.
 */
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';

export type CopyValue = { uuid: string } | { int4: number } | { bytes: Uint8Array };

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** Encode rows (each an array of fields in column order) as one binary COPY payload. */
export function encodeBinaryCopy(rows: Iterable<CopyValue[]>): Buffer {
  const parts: Buffer[] = [SIGNATURE, Buffer.alloc(8)];
  for (const row of rows) {
    let size = 2;
    for (const v of row) size += 4 + ('uuid' in v ? 16 : 'int4' in v ? 4 : v.bytes.length);
    const b = Buffer.allocUnsafe(size);
    let o = b.writeInt16BE(row.length, 0);
    for (const v of row) {
      if ('uuid' in v) {
        o = b.writeInt32BE(16, o);
        o += b.write(v.uuid.replace(/-/g, ''), o, 'hex');
      } else if ('int4' in v) {
        o = b.writeInt32BE(4, o);
        o = b.writeInt32BE(v.int4, o);
      } else {
        o = b.writeInt32BE(v.bytes.length, o);
        b.set(v.bytes, o);
        o += v.bytes.length;
      }
    }
    parts.push(b);
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  parts.push(trailer);
  return Buffer.concat(parts);
}

/**
 * A minimal node-postgres "submittable" for COPY … FROM STDIN: it sends the statement, streams
 * the payload when the server asks for it, and resolves with the copied row count.
 */
class CopyIn {
  rowCount = 0;
  private error: Error | null = null;
  constructor(
    readonly text: string,
    private readonly payload: Buffer,
    private readonly done: (err: Error | null, rows: number) => void,
  ) {}
  submit(connection: { query(text: string): void }) {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }) {
    const CHUNK = 1 << 20;
    for (let o = 0; o < this.payload.length; o += CHUNK) connection.sendCopyFromChunk(this.payload.subarray(o, o + CHUNK));
    connection.endCopyFrom();
  }
  handleCommandComplete(msg: { text?: string }) {
    const m = /COPY (\d+)/.exec(msg.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }
  handleError(err: Error) {
    this.error = err;
  }
  handleReadyForQuery() {
    this.done(this.error, this.rowCount);
  }
  handleRowDescription() {}
  handleDataRow() {}
  handlePortalSuspended() {}
  handleEmptyQuery() {}
  handleCopyData() {}
}

/** COPY `target` FROM the payload (binary format); returns the number of rows copied. */
export async function copyIn(client: pg.ClientBase | PGlite, target: string, payload: Buffer): Promise<number> {
  const statement = `COPY ${target} FROM STDIN (FORMAT binary)`;
  if ('waitReady' in client) {
    const r = await client.query(`COPY ${target} FROM '/dev/blob' (FORMAT binary)`, [], { blob: new Blob([payload]) });
    return r.affectedRows ?? 0;
  }
  return new Promise<number>((resolve, reject) => {
    const submittable = new CopyIn(statement, payload, (err, n) => (err ? reject(err) : resolve(n)));
    (client as unknown as { query(s: unknown): void }).query(submittable);
  });
}
