import { setTimeout as sleep } from 'node:timers/promises';
import type { Writable } from 'node:stream';

/**
 * Where the server's JSON log lines go (stdout): never blocking, never unbounded.
 *
 * pino's default destination (sonic-boom) queues without limit while stdout is a full pipe, and at
 * `process.exit` flushes synchronously, retrying EAGAIN with Atomics.wait until someone reads: a
 * server whose stdout reader stopped reading grows its memory without bound and then never exits
 * (its main thread parked in a futex, its own forced exit included). Here lines go through
 * `process.stdout`, which on a pipe writes asynchronously (libuv queues what the pipe cannot
 * take), with a bound on what may wait: past it a line is dropped and counted, and a warning line
 * says how many once the output drains. Nothing hooks the process's exit, so exiting never waits
 * for a reader; the graceful shutdown gives pending lines a short, bounded `flush` first.
 */
export interface LogDestination {
  write(line: string): void;
  /** Lines dropped so far because the output was not taking them. */
  readonly dropped: number;
  /** Waits (at most `ms`) until every accepted line is written; false if time ran out first. */
  flush(ms: number): Promise<boolean>;
}

/** Up to this many bytes of log lines may wait for a slow or stuck reader. */
export const LOG_QUEUE_MAX_BYTES = 4 * 1024 * 1024;

export function createLogDestination(out: Writable, maxQueuedBytes = LOG_QUEUE_MAX_BYTES): LogDestination {
  let dropped = 0;
  let unreported = 0;
  let broken = false;
  // EPIPE and the like: the reader is gone for good; drop from now on instead of crashing.
  out.on('error', () => {
    broken = true;
  });
  return {
    write(line) {
      if (broken || out.writableLength + Buffer.byteLength(line) > maxQueuedBytes) {
        dropped++;
        unreported++;
        return;
      }
      if (unreported > 0) {
        out.write(`${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, dropped: unreported, msg: 'log lines were dropped: stdout was not being read' })}\n`);
        unreported = 0;
      }
      out.write(line);
    },
    get dropped() {
      return dropped;
    },
    async flush(ms) {
      const until = Date.now() + ms;
      while (out.writableLength > 0 && !broken) {
        if (Date.now() >= until) return false;
        await sleep(10);
      }
      return !broken;
    },
  };
}
