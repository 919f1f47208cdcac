/**
 * `fn` behind a short-lived cache: its result is reused for `ttlMs` after it settled, and callers
 * that arrive while it runs share that one call. So N concurrent probes cost one call, and a
 * steady stream of them one call per `ttlMs`. `fn` must not reject (turn a failure into a value,
 * so that a failure is reused too, rather than retried by every caller).
 */
export function reuseFor<T>(ttlMs: number, fn: () => Promise<T>, now: () => number = () => performance.now()): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  let last: { at: number; value: T } | null = null;
  return () => {
    if (last && now() - last.at < ttlMs) return Promise.resolve(last.value);
    if (!inFlight) {
      inFlight = fn()
        .then((value) => {
          last = { at: now(), value };
          return value;
        })
        .finally(() => {
          inFlight = null;
        });
    }
    return inFlight;
  };
}
