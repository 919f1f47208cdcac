/**
 * The read ceiling: a bare Fastify server whose route does one `SELECT 1` through the same kind
 * of database connection the API uses (a pg pool of the same size, or PGlite on the same data
 * directory), and nothing else: no auth, no crypto, no plugins. Run as its own process by the
 * benchmark; stopped by its PID.
 */
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Fastify from 'fastify';
import pg from 'pg';

const port = Number(process.env.PORT ?? 0);
const url = process.env.DATABASE_URL || undefined;
let select1: () => Promise<unknown>;
let close: () => Promise<void>;
if (url) {
  const pool = new pg.Pool({ connectionString: url, max: Number(process.env.POOL_SIZE ?? 10) });
  select1 = async () => (await pool.query('select 1 as one')).rows[0];
  close = () => pool.end();
} else {
  const db = new PGlite(path.join(process.env.DATA_DIR ?? './data', 'pgdata'));
  await db.waitReady;
  select1 = async () => (await db.query('select 1 as one')).rows[0];
  close = () => db.close();
}

const app = Fastify({ logger: false });
app.get('/ready', async () => ({ ok: true }));
app.get('/plain', async () => ({ ok: true }));
app.get('/select1', async () => ({ ok: true, row: await select1() }));
await app.listen({ port, host: '127.0.0.1' });

const shutdown = async () => {
  await app.close();
  await close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
