/**
 * A small Prometheus text-format registry: counters, gauges and histograms with labels.
 * Label values are never secret material (routes, outcomes, states).
 */
type Labels = Record<string, string>;
const key = (l: Labels) =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}="${String(l[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

interface Metric {
  render(): string;
}

export function createMetrics() {
  const all: Metric[] = [];

  function counter(name: string, help: string) {
    const values = new Map<string, number>();
    all.push({
      render: () =>
        `# HELP ${name} ${help}\n# TYPE ${name} counter\n` +
        [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ''} ${v}`).join('\n'),
    });
    return { inc: (l: Labels = {}, n = 1) => values.set(key(l), (values.get(key(l)) ?? 0) + n), get: (l: Labels = {}) => values.get(key(l)) ?? 0 };
  }

  function gauge(name: string, help: string) {
    const values = new Map<string, number>();
    const m = {
      set: (l: Labels, v: number) => values.set(key(l), v),
      render: () =>
        `# HELP ${name} ${help}\n# TYPE ${name} gauge\n` + [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ''} ${v}`).join('\n'),
    };
    all.push(m);
    return m;
  }

  /** A counter kept elsewhere (e.g. by the database), read at scrape time; no sample until a source is set. */
  function counterFrom(name: string, help: string) {
    let read: (() => number) | undefined;
    all.push({ render: () => `# HELP ${name} ${help}\n# TYPE ${name} counter${read ? `\n${name} ${read()}` : ''}` });
    return {
      source(fn: () => number) {
        read = fn;
      },
    };
  }

  function histogram(name: string, help: string, buckets: number[]) {
    const series = new Map<string, { counts: number[]; sum: number; n: number }>();
    all.push({
      render: () => {
        const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
        for (const [k, s] of series) {
          const pre = k ? `${k},` : '';
          let acc = 0;
          buckets.forEach((b, i) => {
            acc += s.counts[i]!;
            lines.push(`${name}_bucket{${pre}le="${b}"} ${acc}`);
          });
          lines.push(`${name}_bucket{${pre}le="+Inf"} ${s.n}`);
          lines.push(`${name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
          lines.push(`${name}_count${k ? `{${k}}` : ''} ${s.n}`);
        }
        return lines.join('\n');
      },
    });
    return {
      observe(l: Labels, v: number) {
        const k = key(l);
        let s = series.get(k);
        if (!s) {
          s = { counts: buckets.map(() => 0), sum: 0, n: 0 };
          series.set(k, s);
        }
        const i = buckets.findIndex((b) => v <= b);
        if (i >= 0) s.counts[i]!++;
        s.sum += v;
        s.n++;
      },
    };
  }

  const metrics = {
    httpRequests: counter('keyturn_http_requests_total', 'HTTP requests by method, route and status'),
    httpDuration: histogram('keyturn_http_request_duration_seconds', 'HTTP request latency', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]),
    kdfCount: counter('keyturn_kdf_derivations_total', 'argon2id derivations run'),
    rotations: counter('keyturn_rotations_total', 'Rotation executions by outcome'),
    rotationDuration: histogram('keyturn_rotation_duration_seconds', 'Duration of rotation executions', [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
    maintenanceRuns: counter('keyturn_maintenance_runs_total', 'Maintenance runs by kind'),
    tokensByState: gauge('keyturn_rotation_tokens', 'Rotation tokens by state'),
    auditChainOk: gauge('keyturn_audit_chain_ok', '1 when the audit hash chain verified at the last check'),
    // Security alarms: each should stay 0; alert on any increase.
    notificationsDelivered: counter('keyturn_notifications_delivered_total', 'Notification deliveries by channel and outcome (sent, retrying, dead)'),
    amkMismatch: counter('keyturn_amk_public_key_mismatch_total', 'Admin master key unwraps whose public key did not match the stored AMK public key'),
    pgliteFsyncs: counterFrom('keyturn_pglite_fsyncs_total', 'fsync(2) calls of the embedded database (PGlite, PGLITE_FSYNC=on)'),
    async render(): Promise<string> {
      return `${all.map((m) => m.render()).join('\n')}\n`;
    },
  };
  return metrics;
}
export type Metrics = ReturnType<typeof createMetrics>;
