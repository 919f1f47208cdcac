import { type SQL, sql } from 'drizzle-orm';

/**
 * The trusted clock is the database's (DESIGN §3, RELIABILITY E7): every expiry and lock-age
 * decision is made in SQL against `now()`. Tests inject an offset through this dependency
 * instead of touching the API host's clock.
 */
export interface Clock {
  now(): SQL;
}

export const dbClock: Clock = { now: () => sql`now()` };

/** A clock shifted by a mutable offset (milliseconds), for tests of expiry boundaries. */
export function offsetClock(): Clock & { offsetMs: number } {
  const c = {
    offsetMs: 0,
    now: () => sql`(now() + (${c.offsetMs}::bigint * interval '1 millisecond'))`,
  };
  return c;
}
