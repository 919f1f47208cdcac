/**
 * PGlite on disk whose commits reach the disk (db/README.md, "Durability of the embedded
 * database"). Stock PGlite cannot: it starts Postgres with `-F` (fsync off), and even with fsync
 * on nothing would be flushed, because in its Emscripten glue `fdatasync` is a no-op and NODEFS
 * has no `stream_ops.fsync` (so `fsync`, through WASI `fd_sync`, does nothing either).
 *
 * Here: NODEFS gets an fsync that calls fsync(2) on the real file descriptor, Postgres starts
 * without `-F`, with `wal_sync_method=fsync` (fdatasync would still be the no-op), so COMMIT
 * returns only after its WAL is on the disk. A new cluster's files, which PGlite unpacks from its
 * initdb without any flush, are fsynced once after creation.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite, type postgresMod } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

type Mod = postgresMod.PostgresMod;
/** The parts of Emscripten's NODEFS this module touches (not in PGlite's types). */
interface NodeFsInternals {
  stream_ops: { fsync?: (stream: { nfd: number }) => number };
  /** Runs a Node fs call, turning its error into the errno Postgres sees. */
  tryFSOperation<T>(f: () => T): T;
}

/** PGlite's start parameters without `-F`, with the one WAL sync method that reaches fsync(2). */
export const DURABLE_START_PARAMS: readonly string[] = [...PGlite.defaultStartParams.filter((p) => p !== '-F'), '-c', 'wal_sync_method=fsync'];

/** NodeFS whose fsync is real, counting each call. */
class FsyncingNodeFS extends NodeFS {
  readonly #onFsync: () => void;

  constructor(dataDir: string, onFsync: () => void) {
    super(dataDir);
    this.#onFsync = onFsync;
  }

  override async init(pg: PGlite, opts: Partial<Mod>) {
    const installFsync = (mod: Mod) => {
      const nodefs = (mod as unknown as { NODEFS: NodeFsInternals }).NODEFS;
      nodefs.stream_ops.fsync = (stream) => {
        nodefs.tryFSOperation(() => fsyncSync(stream.nfd));
        this.#onFsync();
        return 0;
      };
    };
    // A preRun runs before Postgres' main: no file is opened before fsync is in place.
    return super.init(pg, { ...opts, preRun: [installFsync, ...(opts.preRun ?? [])] });
  }
}

/** fsync every file and directory under `dir` (directories after their entries). */
function fsyncTree(dir: string): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) n += fsyncTree(p);
    else if (entry.isFile()) n += fsyncPath(p);
  }
  return n + fsyncPath(dir);
}

function fsyncPath(p: string): number {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return 1;
}

export interface DurablePglite {
  client: PGlite;
  /** fsync(2) calls Postgres made through NODEFS since opening (the creation flush not included). */
  fsyncs(): number;
}

/** Opens (or creates) the cluster in `dir` with every commit fsynced. */
export async function openDurablePglite(dir: string): Promise<DurablePglite> {
  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  let fsyncs = 0;
  const client = new PGlite({
    fs: new FsyncingNodeFS(dir, () => {
      fsyncs++;
    }),
    startParams: [...DURABLE_START_PARAMS],
  });
  await client.waitReady;
  if (fresh) fsyncTree(dir);
  return { client, fsyncs: () => fsyncs };
}
