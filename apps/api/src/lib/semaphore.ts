/**
 * At most `limit` runs at once; the rest wait in arrival order. Used to bound concurrent argon2id
 * derivations (each holds KDF_MEMORY_KIB and a core): a burst of sign-ins queues instead of taking
 * every core from the requests already in flight, and memory stays bounded under a login flood.
 */
export interface Semaphore {
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs in progress and runs waiting (for metrics and tests). */
  readonly active: number;
  readonly waiting: number;
}

export function createSemaphore(limit: number): Semaphore {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('a semaphore needs a limit of at least 1');
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    const next = queue.shift();
    // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
    if (next) next();
    else active--;
  };
  return {
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (active < limit) active++;
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await fn();
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
