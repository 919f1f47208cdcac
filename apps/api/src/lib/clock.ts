import { type SQL, sql } from 'drizzle-orm';

/**
 * The trusted clock is the database's (DESIGN §3, RELIABILITY E7): every expiry and lock-age
 * decision is made in SQL against `now()`. Tests inject an offset (or a frozen instant) through
 * this dependency instead of touching the API host's clock.
 *
 * Two forms of the same instant: `now()` is an SQL fragment for statements built per call;
 * prepared statements (built once, on the hot paths) use PREPARED_NOW and bind `params()`.
 */
export interface Clock {
  now(): SQL;
  params(): ClockParams;
}

export interface ClockParams {
  /** A frozen instant (ISO), or null for the database's now(). */
  clockAt: string | null;
  /** Added to now() when clockAt is null. */
  clockOffsetMs: number;
}

/** The clock inside a prepared statement; execute it with `{ ...clock.params(), … }`. */
export const PREPARED_NOW: SQL = sql`coalesce(${sql.placeholder('clockAt')}::timestamptz, now() + (${sql.placeholder('clockOffsetMs')}::bigint * interval '1 millisecond'))`;

const REAL: ClockParams = { clockAt: null, clockOffsetMs: 0 };
export const dbClock: Clock = { now: () => sql`now()`, params: () => REAL };

/** A clock shifted by a mutable offset (milliseconds), for tests of expiry boundaries. */
export function offsetClock(): Clock & { offsetMs: number } {
  const c = {
    offsetMs: 0,
    now: () => sql`(now() + (${c.offsetMs}::bigint * interval '1 millisecond'))`,
    params: () => ({ clockAt: null, clockOffsetMs: c.offsetMs }),
  };
  return c;
}
