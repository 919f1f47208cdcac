import autocannon from 'autocannon';
import { percentile, round } from './util';

export interface LoadResult {
  url: string;
  connections: number;
  seconds: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
}

export interface Sample {
  /** performance.now() when the response arrived. */
  at: number;
  ms: number;
}

/**
 * Drive `paths` round-robin on `baseUrl` with autocannon (keep-alive, no pipelining) for
 * `seconds`. Latencies come from autocannon's per-response event at sub-millisecond precision.
 */
export async function load(opts: {
  baseUrl: string;
  paths: string[];
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  /** Called with the response timestamps, e.g. to split them into windows. */
  onSamples?: (samples: Sample[]) => void;
  /** Runs once the load is on (e.g. a burst of other requests); awaited before the result. */
  during?: () => Promise<void>;
}): Promise<LoadResult> {
  const samples: Sample[] = [];
  let duringPromise: Promise<void> | null = null;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: opts.baseUrl,
        connections: opts.connections,
        pipelining: 1,
        duration: opts.seconds,
        headers: opts.headers ?? {},
        requests: opts.paths.map((path) => ({ method: 'GET' as const, path })),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      samples.push({ at: performance.now(), ms: responseTime });
    });
    if (opts.during) {
      const run = opts.during;
      instance.once('start', () => {
        duringPromise = run();
        duringPromise.catch(() => {});
      });
    }
  });
  if (duringPromise) await duringPromise;
  opts.onSamples?.(samples);
  const ms = samples.map((s) => s.ms);
  return {
    url: opts.baseUrl + (opts.paths[0] ?? ''),
    connections: opts.connections,
    seconds: result.duration,
    requests: result['2xx'],
    rps: round(result['2xx'] / result.duration, 0),
    p50Ms: round(percentile(ms, 50)),
    p99Ms: round(percentile(ms, 99)),
    maxMs: round(Math.max(...ms)),
    non2xx: result.non2xx,
    errors: result.errors,
  };
}
