import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from './client';

/**
 * SQLSTATEs after which a whole transaction may simply run again (RELIABILITY E4): Postgres rolled
 * it back as the victim of a deadlock (40P01) or a serialization conflict (40001), so nothing of
 * it was applied and a fresh run is the documented remedy.
 */
const RETRYABLE = new Set(['40P01', '40001']);

/** The SQLSTATE of a driver error, on the error itself or on Drizzle's wrapper's cause. */
export function sqlStateOf(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

export const isRetryableTxError = (e: unknown): boolean => RETRYABLE.has(sqlStateOf(e) ?? '');

/** Attempts of one transaction in all (the first run and the retries). */
export const TX_ATTEMPTS = 4;

/**
 * Make `db.transaction` re-run its callback, a bounded number of times with jittered backoff,
 * when Postgres aborted the transaction as a deadlock or serialization victim. Every transaction
 * callback in the services is therefore written to be re-runnable: everything it does is inside
 * the transaction (a re-run starts from the same database state, with fresh random values), and
 * what it does outside (metrics, wiping key material computed before it) happens after it.
 * Past the last attempt the error propagates; the error handler answers it 503 with Retry-After,
 * never 500. Savepoints (`tx.transaction`) are not retried on their own: the whole transaction is.
 */
export function retryTransactions(db: Db, attempts = TX_ATTEMPTS): void {
  const run = db.transaction.bind(db) as Db['transaction'];
  const retrying: Db['transaction'] = async (fn, config) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(fn, config);
      } catch (e) {
        if (attempt >= attempts || !isRetryableTxError(e)) throw e;
        // 5–15 ms, 10–30 ms, 20–60 ms: the other party usually commits within that.
        const base = 5 * 2 ** (attempt - 1);
        await sleep(base + randomInt(2 * base));
      }
    }
  };
  (db as { transaction: Db['transaction'] }).transaction = retrying;
}
