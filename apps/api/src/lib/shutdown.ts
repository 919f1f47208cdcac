import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import { loggable } from './loggable';

/**
 * A thread of its own that SIGKILLs this process at `deadline` (epoch ms). The shutdown bound
 * then holds even if the main thread never returns to its event loop (a stuck synchronous call),
 * when no timer of its own can fire. Unref'd, so it never keeps the process alive; a normal exit
 * ends it first. `execArgv: []`: it loads nothing (no tsx, no preloads) and starts in milliseconds;
 * the deadline is absolute, so its start-up does not count against the bound.
 */
export function startWatchdog(deadline: number): Worker {
  const worker = new Worker(
    "const { workerData: w } = require('node:worker_threads'); setTimeout(() => process.kill(w.pid, 'SIGKILL'), Math.max(0, w.deadline - Date.now()));",
    { eval: true, workerData: { pid: process.pid, deadline }, execArgv: [] },
  );
  worker.unref();
  return worker;
}

/**
 * When, after the signal, the main thread gives up and exits by itself (logging why), and when
 * the watchdog kills: both before the bound, so that the process is gone by it even on a loaded
 * machine (30 s bound: 28.5 s and 29.5 s; 1 s bound: 0.5 s and 0.75 s).
 */
export function shutdownDeadlines(timeoutMs: number): { forcedExitMs: number; watchdogMs: number } {
  return { forcedExitMs: timeoutMs - Math.min(1500, timeoutMs / 2), watchdogMs: timeoutMs - Math.min(500, timeoutMs / 4) };
}

export interface ShutdownSteps {
  log: FastifyBaseLogger;
  /** SHUTDOWN_TIMEOUT_SECONDS in ms: the process is gone this long after the signal at the latest. */
  timeoutMs: number;
  /** Clears the scheduler's timers at once; resolves when a run in flight has finished. */
  stopScheduler(): Promise<void>;
  /** Stops accepting, closes idle connections, resolves when every request is answered. */
  closeServer(): Promise<void>;
  closeDatabase(): Promise<void>;
  /** Gives pending log lines up to `ms` to reach the output. */
  flushLogs(ms: number): Promise<unknown>;
  exit(code: number): void;
}

/**
 * The graceful shutdown, run once on the first SIGTERM/SIGINT:
 *
 *   1. a forced `exit(1)` before the bound, and the watchdog thread's SIGKILL closer to it if the
 *      main thread cannot even do that (shutdownDeadlines);
 *   2. the scheduler stops (no new run; a run in flight finishes) while the HTTP server stops
 *      accepting and drains (idle connections closed at once, busy ones after their response);
 *   3. the database closes, once no request and no scheduler run can use it;
 *   4. pending log lines get what is left of a second, then exit 0 (1 if a step failed).
 */
export function createShutdown(steps: ShutdownSteps): (signal: string) => void {
  const { log, timeoutMs } = steps;
  let started = false;
  return (signal) => {
    if (started) {
      log.warn({ signal }, 'already shutting down');
      return;
    }
    started = true;
    const t0 = Date.now();
    const { forcedExitMs: forcedAt, watchdogMs } = shutdownDeadlines(timeoutMs);
    startWatchdog(t0 + watchdogMs);
    // While the main thread still runs: a logged, orderly exit(1) before the watchdog's kill.
    const force = setTimeout(() => {
      log.error({ timeoutSeconds: timeoutMs / 1000 }, 'shutdown did not finish within SHUTDOWN_TIMEOUT_SECONDS: exiting now');
      void steps.flushLogs(Math.min(200, (timeoutMs - forcedAt) / 4)).then(() => steps.exit(1));
    }, forcedAt);
    force.unref();
    log.info({ signal, timeoutSeconds: timeoutMs / 1000 }, 'shutting down: scheduler first, then the HTTP server drains, then the database closes');

    let code = 0;
    const step = async (what: string, fn: () => Promise<unknown>, done: string) => {
      try {
        await fn();
        log.info(done);
      } catch (err) {
        code = 1;
        log.error({ err: loggable(err) }, `shutdown: ${what} failed`);
      }
    };
    void (async () => {
      await Promise.all([
        step('stopping the scheduler', steps.stopScheduler, 'maintenance scheduler stopped'),
        step('closing the HTTP server', steps.closeServer, 'HTTP server closed: every request answered'),
      ]);
      await step('closing the database', steps.closeDatabase, 'database closed');
      log.info({ ms: Date.now() - t0, code }, 'shutdown complete');
      await steps.flushLogs(Math.max(0, Math.min(1000, t0 + forcedAt - 100 - Date.now())));
      steps.exit(code);
    })();
  };
}
