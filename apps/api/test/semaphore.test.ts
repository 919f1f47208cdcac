import { describe, expect, it } from 'vitest';
import { createSemaphore, QueueFullError } from '../src/lib/semaphore';

const tick = () => new Promise((r) => setImmediate(r));
function gate() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('createSemaphore', () => {
  it('never runs more than its limit at once, and runs every job in arrival order', async () => {
    const s = createSemaphore(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 6 }, gate);
    const jobs = gates.map((g, i) =>
      s.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await g.promise;
        running--;
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect([s.active, s.waiting]).toEqual([2, 4]);
    gates[1]!.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect([s.active, s.waiting]).toEqual([0, 0]);
  });

  it('a job that throws gives its slot back', async () => {
    const s = createSemaphore(1);
    await expect(s.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await s.run(async () => 'next')).toBe('next');
    expect(s.active).toBe(0);
  });

  it('refuses a limit below 1', () => {
    expect(() => createSemaphore(0)).toThrow(RangeError);
    expect(() => createSemaphore(1.5)).toThrow(RangeError);
  });
});

describe('createSemaphore with a bounded queue', () => {
  it('refuses a run at once (QueueFullError) when the slots are busy and the queue is full; admits again once there is room', async () => {
    const s = createSemaphore(1, 1);
    const g1 = gate();
    const g2 = gate();
    const first = s.run(() => g1.promise);
    const second = s.run(() => g2.promise);
    await tick();
    expect([s.active, s.waiting, s.admits]).toEqual([1, 1, false]);
    await expect(s.run(async () => 'never')).rejects.toBeInstanceOf(QueueFullError);
    g1.resolve();
    await first;
    await tick();
    expect(s.admits).toBe(true);
    g2.resolve();
    await second;
    expect(await s.run(async () => 'ran')).toBe('ran');
  });
});
