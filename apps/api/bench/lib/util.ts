import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

// ---------------------------------------------------------------------------------------------
// statistics

export interface Summary {
  runs: number[];
  median: number;
  min: number;
  max: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function summarize(values: number[]): Summary {
  return { runs: values.map(round), median: round(percentile(values, 50)), min: round(Math.min(...values)), max: round(Math.max(...values)) };
}

export const round = (n: number, digits = 2): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

// ---------------------------------------------------------------------------------------------
// HTTP against the API child

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

export function httpClient(baseUrl: string) {
  return async function call<T>(method: string, path: string, opts: { body?: unknown; token?: string; expect?: number } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const res = await fetch(baseUrl + path, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    const text = await res.text();
    if (res.status !== (opts.expect ?? 200)) throw new HttpError(res.status, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : null) as T;
  };
}
export type HttpCall = ReturnType<typeof httpClient>;

// ---------------------------------------------------------------------------------------------
// child processes

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Child {
  readonly pid: number;
  readonly port: number;
  readonly baseUrl: string;
  /** The last lines the child wrote (for error messages). */
  tail(): string;
  stop(): Promise<void>;
}

/**
 * Start `node --import tsx <script>` as its own process (its own event loop and heap), wait until
 * `readyPath` answers 200, and stop it by its PID (SIGTERM, then SIGKILL after a grace period).
 */
export async function startChild(opts: { cwd: string; script: string; env: Record<string, string>; port: number; readyPath: string; timeoutMs?: number; nodeArgs?: string[] }): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', opts.script], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: number | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = code ?? (signal ? 128 : 0);
      resolve();
    }),
  );
  const baseUrl = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (exited !== null) throw new Error(`${opts.script} exited (${exited}) before it was ready:\n${out}`);
    try {
      const r = await fetch(baseUrl + opts.readyPath);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${opts.script} was not ready within ${opts.timeoutMs ?? 60_000} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid: child.pid!,
    port: opts.port,
    baseUrl,
    tail: () => out,
    async stop() {
      if (exited !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// memory of another process, from /proc (Linux)

export interface ProcMem {
  rssKb: number;
  hwmKb: number;
}

export function procMem(pid: number): ProcMem | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Reset the kernel's peak-RSS mark (VmHWM) of a process to its current RSS; false if refused. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Sample a process's VmRSS every `everyMs` while `fn` runs; the peak is the larger of the highest
 * sample and the kernel's VmHWM (reset just before), so short spikes between samples count too.
 */
export async function withRssSampling<T>(pid: number, fn: () => Promise<T>, everyMs = 5): Promise<{ value: T; baselineMb: number; peakMb: number; growthMb: number; samples: number; hwmUsed: boolean }> {
  const before = procMem(pid);
  const hwmUsed = resetPeak(pid);
  let peakKb = before?.rssKb ?? Number.NaN;
  let samples = 0;
  const timer = setInterval(() => {
    const m = procMem(pid);
    if (m) {
      samples++;
      if (m.rssKb > peakKb) peakKb = m.rssKb;
    }
  }, everyMs);
  try {
    const value = await fn();
    const after = procMem(pid);
    if (after && hwmUsed && after.hwmKb > peakKb) peakKb = after.hwmKb;
    const baselineMb = (before?.rssKb ?? Number.NaN) / 1024;
    const peakMb = peakKb / 1024;
    return { value, baselineMb: round(baselineMb, 1), peakMb: round(peakMb, 1), growthMb: round(peakMb - baselineMb, 1), samples, hwmUsed };
  } finally {
    clearInterval(timer);
  }
}
