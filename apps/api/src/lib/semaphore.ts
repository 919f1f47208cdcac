/**
 * At most `limit` runs at once; the rest wait in arrival order, at most `maxQueue` of them. Used to
 * bound concurrent argon2id derivations (each holds KDF_MEMORY_KIB and a core): a burst of sign-ins
 * queues instead of taking every core from the requests already in flight, memory stays bounded
 * under a login flood, and past the queue's bound a caller is told at once (QueueFullError) instead
 * of waiting without end.
 */
export interface Semaphore {
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Whether a run started now would be admitted (a free slot or room in the queue). */
  readonly admits: boolean;
  /** Runs in progress and runs waiting (for metrics and tests). */
  readonly active: number;
  readonly waiting: number;
}

export class QueueFullError extends Error {
  constructor() {
    super('the queue is full');
    this.name = 'QueueFullError';
  }
}

export function createSemaphore(limit: number, maxQueue = Number.POSITIVE_INFINITY): Semaphore {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('a semaphore needs a limit of at least 1');
  if (!(maxQueue >= 0)) throw new RangeError('a semaphore needs a queue bound of at least 0');
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
      else if (queue.length >= maxQueue) throw new QueueFullError();
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await fn();
      } finally {
        release();
      }
    },
    get admits() {
      return active < limit || queue.length < maxQueue;
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
