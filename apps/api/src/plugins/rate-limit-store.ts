import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type pg from 'pg';

/**
 * The @fastify/rate-limit store on Postgres (issue 10 item 9): every API instance counts one
 * client's requests together, in the UNLOGGED `rate_limits` table (fixed windows, keyed by route
 * and client; the database's clock). One statement per request: an upsert that starts a new
 * window when the old one is over and returns the count and the window's remaining time. It runs
 * as a named prepared statement on the pool. On the embedded database (one process) the plugin's
 * in-memory store does the same job.
 */
const INCR = `insert into rate_limits as r (key, window_started_at, hits) values ($1, now(), 1)
  on conflict (key) do update set
    hits = case when r.window_started_at <= now() - $2::int * interval '1 millisecond' then 1 else r.hits + 1 end,
    window_started_at = case when r.window_started_at <= now() - $2::int * interval '1 millisecond' then now() else r.window_started_at end
  returning hits, greatest(0, ceil(extract(epoch from (window_started_at + $2::int * interval '1 millisecond' - now())) * 1000))::int as ttl`;

const READ = `select hits, greatest(0, ceil(extract(epoch from (window_started_at + $2::int * interval '1 millisecond' - now())) * 1000))::int as ttl
  from rate_limits where key = $1 and window_started_at > now() - $2::int * interval '1 millisecond'`;

type Callback = (err: Error | null, res?: { current: number; ttl: number }) => void;
/** At run time the plugin passes its merged parameters, with the route's options as `routeInfo`. */
type Params = { routeInfo?: { method?: string | string[]; url?: string } };

export function postgresRateLimitStore(pool: pg.Pool): FastifyRateLimitStoreCtor {
  return class PostgresRateLimitStore implements FastifyRateLimitStore {
    /** Which limiter this is: the global one, or one route's own (its counters are separate). */
    private readonly scope: string;

    constructor(options: unknown = {}) {
      const r = (options as Params).routeInfo;
      this.scope = r?.url ? `${[r.method].flat().join(',')} ${r.url}` : 'global';
    }

    incr(key: string, cb: Callback, timeWindow: number): void {
      pool.query<{ hits: number; ttl: number }>({ name: 'rate_limit_incr', text: INCR, values: [`${this.scope}|${key}`, timeWindow] }).then(
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
