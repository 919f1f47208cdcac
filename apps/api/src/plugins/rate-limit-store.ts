import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type pg from 'pg';

/**
 * The @fastify/rate-limit store on Postgres (issue 10 item 9, auth README A10): every API instance
 * counts one client's requests together, in the UNLOGGED `rate_limits` table (fixed windows, keyed
 * by limiter and client, on the database's clock). Two ways of counting:
 *
 * - **A route's own limit** (sign-in, registration, setup, execute, adding an admin: the password
 *   guessing surface) is exact: one upsert per request, which starts a new window when the old
 *   one is over and returns the count and the window's remaining time. These routes do argon2id
 *   work anyway; the round trip is nothing beside it.
 * - **The global limit** (every other route, reads included) counts in memory and sends the counts
 *   to the table in one statement per SYNC_MS for all clients at once, taking back each client's
 *   total over every instance. A client is refused once its known total (all instances, as of the
 *   last sync) plus this instance's requests since exceeds the limit. The bound: across n
 *   instances a client can overshoot by what the other n − 1 instances let through in one sync
 *   period, a handful of requests on a limit of 300 a minute. A read costs no extra round trip.
 *
 * On the embedded database (one process) the plugin's in-memory store does the job.
 */
export const SYNC_MS = 250;

const INCR = `insert into rate_limits as r (key, window_started_at, hits) values ($1, now(), 1)
  on conflict (key) do update set
    hits = case when r.window_started_at <= now() - $2::int * interval '1 millisecond' then 1 else r.hits + 1 end,
    window_started_at = case when r.window_started_at <= now() - $2::int * interval '1 millisecond' then now() else r.window_started_at end
  returning hits, greatest(0, ceil(extract(epoch from (window_started_at + $2::int * interval '1 millisecond' - now())) * 1000))::int as ttl`;

/** INCR for many keys at once, each by its own delta. */
const ADD = `insert into rate_limits as r (key, window_started_at, hits)
    select k, now(), d from unnest($1::text[], $2::int[]) as x(k, d)
  on conflict (key) do update set
    hits = case when r.window_started_at <= now() - $3::int * interval '1 millisecond' then excluded.hits else r.hits + excluded.hits end,
    window_started_at = case when r.window_started_at <= now() - $3::int * interval '1 millisecond' then now() else r.window_started_at end
  returning key, hits, greatest(0, ceil(extract(epoch from (window_started_at + $3::int * interval '1 millisecond' - now())) * 1000))::int as ttl`;

const READ = `select hits, greatest(0, ceil(extract(epoch from (window_started_at + $2::int * interval '1 millisecond' - now())) * 1000))::int as ttl
  from rate_limits where key = $1 and window_started_at > now() - $2::int * interval '1 millisecond'`;

type Callback = (err: Error | null, res?: { current: number; ttl: number }) => void;
/** At run time the plugin passes its merged parameters, with the route's options as `routeInfo`. */
type Params = { routeInfo?: { method?: string | string[]; url?: string } };

/** One client under the global limit, on this instance. */
interface Counter {
  /** Requests over every instance as of the last sync (this instance's synced ones included). */
  known: number;
  /** This instance's requests since the last sync. */
  unsynced: number;
  /** When the window ends, by this host's clock (from the database's remaining time at each sync). */
  windowEndsAt: number;
}

export function postgresRateLimitStore(pool: pg.Pool): FastifyRateLimitStoreCtor {
  const counters = new Map<string, Counter>();
  let timer: NodeJS.Timeout | null = null;
  let windowMs = 60_000;

  /** Send every client's unsynced requests in one statement; take back their totals. */
  async function sync(): Promise<void> {
    timer = null;
    const keys: string[] = [];
    const deltas: number[] = [];
    for (const [k, c] of counters) {
      if (c.unsynced > 0) {
        keys.push(k);
        deltas.push(c.unsynced);
      }
    }
    for (const k of keys) counters.get(k)!.unsynced = 0;
    try {
      const r = await pool.query<{ key: string; hits: number; ttl: number }>({ name: 'rate_limit_add', text: ADD, values: [keys, deltas, windowMs] });
      const now = Date.now();
      for (const row of r.rows) {
        const c = counters.get(row.key);
        if (c) {
          c.known = row.hits;
          c.windowEndsAt = now + row.ttl;
        }
      }
    } catch {
      // The database is away: keep the counts for the next sync (meanwhile this instance counts alone).
      keys.forEach((k, i) => {
        const c = counters.get(k);
        if (c) c.unsynced += deltas[i]!;
      });
    }
    // Forget clients whose window is over and who have nothing left to send.
    const now = Date.now();
    for (const [k, c] of counters) if (c.unsynced === 0 && c.windowEndsAt <= now) counters.delete(k);
    if ([...counters.values()].some((c) => c.unsynced > 0)) schedule();
  }
  function schedule(): void {
    if (timer) return;
    timer = setTimeout(() => void sync(), SYNC_MS);
    timer.unref();
  }

  return class PostgresRateLimitStore implements FastifyRateLimitStore {
    /** Which limiter this is: the global one, or one route's own (its counters are separate). */
    private readonly scope: string;

    constructor(options: unknown = {}) {
      const r = (options as Params).routeInfo;
      this.scope = r?.url ? `${[r.method].flat().join(',')} ${r.url}` : 'global';
    }

    incr(key: string, cb: Callback, timeWindow: number): void {
      const k = `${this.scope}|${key}`;
      if (this.scope === 'global') {
        windowMs = timeWindow;
        const now = Date.now();
        let c = counters.get(k);
        if (!c || c.windowEndsAt <= now) {
          c = { known: 0, unsynced: c?.unsynced ?? 0, windowEndsAt: now + timeWindow };
          counters.set(k, c);
        }
        c.unsynced++;
        schedule();
        cb(null, { current: c.known + c.unsynced, ttl: c.windowEndsAt - now });
        return;
      }
      pool.query<{ hits: number; ttl: number }>({ name: 'rate_limit_incr', text: INCR, values: [k, timeWindow] }).then(
        (r) => cb(null, { current: r.rows[0]!.hits, ttl: r.rows[0]!.ttl }),
        (e: Error) => cb(e),
      );
    }

    read(key: string, cb: Callback, timeWindow: number): void {
      pool.query<{ hits: number; ttl: number }>({ name: 'rate_limit_read', text: READ, values: [`${this.scope}|${key}`, timeWindow] }).then(
        (r) => cb(null, { current: r.rows[0]?.hits ?? 0, ttl: r.rows[0]?.ttl ?? 0 }),
        (e: Error) => cb(e),
      );
    }

    child(routeOptions: unknown): FastifyRateLimitStore {
      return new PostgresRateLimitStore(routeOptions);
    }
  };
}
