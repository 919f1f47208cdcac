/**
 * When the shutdown gives up (lib/shutdown.ts): the main thread's forced exit, then the watchdog's
 * kill, both before SHUTDOWN_TIMEOUT_SECONDS, with room between them and before the bound. The
 * whole sequence runs as a real process in test/ops.server.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { shutdownDeadlines } from '../src/lib/shutdown';

describe('shutdown deadlines', () => {
  it('forced exit < watchdog < bound, for every bound from 1 s to an hour', () => {
    for (const seconds of [1, 2, 3, 5, 10, 30, 60, 3600]) {
      const ms = seconds * 1000;
      const { forcedExitMs, watchdogMs } = shutdownDeadlines(ms);
      expect(forcedExitMs, `${seconds} s`).toBeGreaterThanOrEqual(ms / 2);
      expect(watchdogMs - forcedExitMs, `${seconds} s`).toBeGreaterThanOrEqual(250);
      expect(ms - watchdogMs, `${seconds} s`).toBeGreaterThanOrEqual(250);
    }
    expect(shutdownDeadlines(30_000)).toEqual({ forcedExitMs: 28_500, watchdogMs: 29_500 });
    expect(shutdownDeadlines(1_000)).toEqual({ forcedExitMs: 500, watchdogMs: 750 });
  });
});
