import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { checkedAddresses, guardedLookup, type Resolve, WebhookAddressError } from './webhook-address';

export const WEBHOOK_TIMEOUT_MS = 10_000;

export interface WebhookMessage {
  url: string;
  /** The delivery's idempotency key: the `webhook-id` receivers dedupe on (the same on every retry). */
  id: string;
  /** The JSON body, exactly as signed. */
  body: string;
  /** The endpoint's raw signing secret. */
  secret: Uint8Array;
}

/** The outcome of one attempt; `error` is fit for `last_error` and the delivery log (no secret, no URL). */
export type WebhookResult = { ok: true; status: number } | { ok: false; error: string };

/**
 * One signed POST (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` =
 * v1,HMAC-SHA256(secret, id.timestamp.body)), signed now so a retry carries a fresh timestamp.
 * 2xx is success; any other answer, a network error or the 10 s timeout is a failure. Redirects
 * are not followed (a 3xx is a failure: a redirect could lead to a private address).
 */
export interface SendOptions {
  allowPrivate: boolean;
  timeoutMs?: number;
  /** The name resolver (default: the system's, all addresses); injectable to play a DNS change. */
  resolve?: Resolve;
}

export async function sendWebhook(m: WebhookMessage, opts: SendOptions): Promise<WebhookResult> {
  let url: URL;
  try {
    url = new URL(m.url);
  } catch {
    return { ok: false, error: 'invalid URL' };
  }
  try {
    // Checked again now (DNS can change since creation), and once more by the connection's own lookup.
    await checkedAddresses(url.hostname, opts.allowPrivate, opts.resolve);
    const timestamp = new Date();
    const signature = new Webhook(m.secret, { format: 'raw' }).sign(m.id, timestamp, m.body);
    const status = await post(url, m.body, {
      'content-type': 'application/json',
      'user-agent': 'Keyturn-Webhooks/1',
      'webhook-id': m.id,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': signature,
    }, { lookup: guardedLookup(opts.allowPrivate, opts.resolve), timeoutMs: opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS });
    return status >= 200 && status < 300 ? { ok: true, status } : { ok: false, error: `HTTP ${status}` };
  } catch (e) {
    return { ok: false, error: describe(e, opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS) };
  }
}

function post(url: URL, body: string, headers: Record<string, string>, opts: { lookup: LookupFunction; timeoutMs: number }): Promise<number> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        // A fresh connection per delivery: every one goes through the guarded lookup (no pooled socket to a stale address).
        agent: false,
        lookup: opts.lookup,
        signal: AbortSignal.timeout(opts.timeoutMs),
      },
      (res) => {
        // Only the status matters; the body is drained and dropped.
        res.on('error', () => {});
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A short, secret-free reason: the refusal, the timeout, or the network error's code. */
function describe(e: unknown, timeoutMs: number): string {
  if (e instanceof WebhookAddressError) return `refused: ${e.message}`;
  const err = e as NodeJS.ErrnoException & { cause?: unknown };
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  if (err?.code) return `network error: ${err.code}`;
  return (err instanceof Error ? err.message : String(e)).slice(0, 300);
}
