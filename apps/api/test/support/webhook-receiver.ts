/**
 * A real webhook receiver in the test process (node:http on a loopback port): it checks every
 * request's Standard Webhooks signature with the `standardwebhooks` package — as a receiver in
 * the wild would — records it, and answers with `status` (401 when the signature is wrong). It
 * can be stopped and started again on the same port to play an outage.
 */
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { freePort } from './net';

export interface ReceivedWebhook {
  headers: Record<string, string>;
  body: string;
  /** The signature checked out under `secret`. */
  verified: boolean;
  /** The parsed payload when verified, else the verification error. */
  payload?: unknown;
  error?: string;
  /** What the receiver answered. */
  status: number;
}

export interface TestWebhookReceiver {
  readonly port: number;
  readonly url: string;
  readonly received: ReceivedWebhook[];
  /** The endpoint's secret (`whsec_…`) the receiver verifies with; set once the endpoint exists. */
  secret: string | null;
  /** The answer to a correctly signed request (default 204). */
  status: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<TestWebhookReceiver> {
  const port = await freePort();
  let server: http.Server | null = null;
  const rx: TestWebhookReceiver = {
    port,
    url: `http://127.0.0.1:${port}/hooks/keyturn`,
    received: [],
    secret: null,
    status: 204,
    start,
    stop,
  };
  function start(): Promise<void> {
    return new Promise((resolve, reject) => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
          const r: ReceivedWebhook = { headers, body, verified: false, status: 401 };
          try {
            if (!rx.secret) throw new Error('the receiver has no secret yet');
            r.payload = new Webhook(rx.secret).verify(body, headers);
            r.verified = true;
            r.status = rx.status;
          } catch (e) {
            r.error = e instanceof Error ? e.message : String(e);
          }
          rx.received.push(r);
          res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.verified ? 'ok' : 'bad signature');
        });
      });
      server.on('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  }
  function stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!server) return resolve();
      const s = server;
      server = null;
      s.closeAllConnections();
      s.close(() => resolve());
    });
  }
  await start();
  return rx;
}
