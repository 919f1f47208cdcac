/**
 * The server's log destination (src/lib/log-destination.ts): lines go out asynchronously; while
 * the reader does not read, at most maxQueuedBytes wait and the rest are dropped and counted
 * (never blocking, never growing without bound); once the reader reads again, a warning line says
 * how many were dropped; flush waits a bounded time; a broken pipe only stops the logging.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogDestination } from '../src/lib/log-destination';

/** A pipe whose reader can stop and resume: while stopped, no write completes. */
function pipe() {
  const received: string[] = [];
  const waiting: (() => void)[] = [];
  let reading = false;
  const out = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      const done = () => {
        received.push(chunk.toString());
        cb();
      };
      if (reading) done();
      else waiting.push(done);
    },
  });
  return {
    out,
    received,
    resume() {
      reading = true;
      for (const w of waiting.splice(0)) w();
    },
  };
}

const line = (i: number) => `${JSON.stringify({ level: 30, i, msg: 'x'.repeat(80) })}\n`;

describe('log destination', () => {
  it('a reader that stopped: at most maxQueuedBytes wait, the rest are dropped and counted; no write blocks or throws', async () => {
    const p = pipe();
    const logs = createLogDestination(p.out, 10_000);
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) logs.write(line(i));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(p.out.writableLength).toBeLessThanOrEqual(10_000);
    expect(p.out.writableLength).toBeGreaterThan(10_000 - line(999).length * 2);
    const queued = Math.floor(p.out.writableLength / line(0).length);
    expect(logs.dropped).toBe(1000 - queued);
    // flush gives up after its time, without blocking
    const f0 = Date.now();
    expect(await logs.flush(50)).toBe(false);
    expect(Date.now() - f0).toBeLessThan(400);

    // the reader reads again: what was queued arrives in order, then the drop count, then new lines
    p.resume();
    expect(await logs.flush(1000)).toBe(true);
    logs.write(line(1000));
    expect(await logs.flush(1000)).toBe(true);
    const got = p.received.join('').trim().split('\n').map((l) => JSON.parse(l) as { i?: number; msg: string; dropped?: number });
    expect(got.slice(0, queued).map((l) => l.i)).toEqual(Array.from({ length: queued }, (_, i) => i));
    expect(got[queued]).toMatchObject({ level: 40, dropped: 1000 - queued, msg: expect.stringContaining('dropped') });
    expect(got[queued + 1]!.i).toBe(1000);
    expect(got).toHaveLength(queued + 2);
  });

  it('a reader that is gone (EPIPE): lines are dropped from then on, nothing throws', async () => {
    const out = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const logs = createLogDestination(out, 10_000);
    logs.write(line(0));
    await new Promise((r) => setImmediate(r));
    expect(() => {
      for (let i = 1; i < 10; i++) logs.write(line(i));
    }).not.toThrow();
    expect(logs.dropped).toBe(9);
    expect(await logs.flush(100)).toBe(false);
  });
});
