import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import type { Metrics } from '../health/metrics';
import type { Mailer } from './mailer';
import type { DeliveryRow, NotificationsRepo } from './notifications.repo';
import { openWebhookSecret } from './webhook-secrets';
import { sendWebhook } from './webhook-sender';

export const LEASE_SECONDS = 60;
const BATCH = 20;
/** 5 s, 10 s, 20 s … doubling, at most an hour. */
export const backoffSeconds = (attempts: number) => Math.min(3600, 5 * 2 ** Math.max(0, attempts - 1));

export interface DispatcherDeps {
  db: Db;
  repo: NotificationsRepo;
  mailer: Mailer;
  metrics: Pick<Metrics, 'notificationsDelivered'>;
  config: {
    instanceId: string;
    NOTIFY_MAX_ATTEMPTS: number;
    NOTIFY_MAX_AGE_SECONDS: number;
    NOTIFY_INTERVAL_SECONDS: number;
    /** Opens the webhook endpoints' sealed secrets. */
    jwtSecret: string;
    WEBHOOK_ALLOW_PRIVATE: 'true' | 'false';
  };
  /** Fault point between the receiver's acceptance (SMTP server, webhook endpoint) and marking the row sent (tests). */
  afterSend?: (d: DeliveryRow) => Promise<void>;
}

type Outcome = { ok: true } | { ok: false; error: string };

/**
 * The outbox's read side (README "Delivery"): claim due rows under a lease (SKIP LOCKED), send
 * each outside any transaction, settle it. At least once: a dispatcher that dies after the
 * receiver accepted a mail or a webhook and before marking it sent leaves a row whose lease runs
 * out, and it goes again (same Message-ID / webhook-id). Nothing is lost: a row leaves the queue
 * only as sent or dead.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { db, repo, mailer, metrics, config } = deps;
  const owner = `${config.instanceId}/${randomUUID()}`;

  async function sendEmail(d: DeliveryRow): Promise<Outcome> {
    try {
      await mailer.send({ to: d.recipient, subject: d.subject, text: d.textBody, html: d.htmlBody, idempotencyKey: d.idempotencyKey });
    } catch (e) {
      const error = (e instanceof Error ? e.message : String(e)).slice(0, 500);
      await repo.recordEmailOutcome(db, { ok: false, error });
      return { ok: false, error };
    }
    return { ok: true };
  }

  /** POST the stored body, signed with the endpoint's secret (README "Webhooks"); the secret is wiped after signing. */
  async function sendToWebhook(d: DeliveryRow): Promise<Outcome> {
    const endpoint = await repo.webhookEndpoint(db, d.recipient);
    if (!endpoint) return { ok: false, error: 'the webhook endpoint was deleted' };
    let secret: Buffer;
    try {
      secret = openWebhookSecret(config.jwtSecret, endpoint.id, endpoint.secretCt, endpoint.secretKeyVersion);
    } catch {
      return { ok: false, error: 'the endpoint’s signing secret cannot be opened (was JWT_SECRET changed?); create the endpoint again' };
    }
    try {
      return await sendWebhook({ url: endpoint.url, id: d.idempotencyKey, body: d.textBody, secret }, { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE === 'true' });
    } finally {
      secret.fill(0);
    }
  }

  async function deliver(d: DeliveryRow): Promise<'sent' | 'retrying' | 'dead'> {
    const tooOld = Date.now() - d.createdAt.getTime() > config.NOTIFY_MAX_AGE_SECONDS * 1000;
    if (tooOld) {
      await repo.settle(db, d.id, owner, { status: 'dead', lastError: d.lastError ?? 'too old to deliver' });
      return 'dead';
    }
    const r = d.channel === 'webhook' ? await sendToWebhook(d) : await sendEmail(d);
    if (!r.ok) {
      const dead = d.attempts >= config.NOTIFY_MAX_ATTEMPTS;
      await repo.settle(db, d.id, owner, {
        status: dead ? 'dead' : 'retrying',
        lastError: r.error,
        nextAttemptAt: sql`now() + ${backoffSeconds(d.attempts)} * interval '1 second'` as unknown as Date,
      });
      return dead ? 'dead' : 'retrying';
    }
    await deps.afterSend?.(d);
    await repo.settle(db, d.id, owner, { status: 'sent', sentAt: sql`now()` as unknown as Date, lastError: null });
    if (d.channel === 'email') await repo.recordEmailOutcome(db, { ok: true });
    return 'sent';
  }

  /** Email rows only while email is on (they wait otherwise); webhook rows always. */
  const channels = mailer.enabled ? (['email', 'webhook'] as const) : (['webhook'] as const);

  async function runOnce(): Promise<{ sent: number; retrying: number; dead: number }> {
    const out = { sent: 0, retrying: 0, dead: 0 };
    for (;;) {
      const rows = await repo.claim(db, owner, BATCH, LEASE_SECONDS, channels);
      for (const d of rows) {
        const r = await deliver(d);
        out[r]++;
        metrics.notificationsDelivered.inc({ channel: d.channel === 'webhook' ? 'webhook' : 'email', outcome: r });
      }
      if (rows.length < BATCH) return out;
    }
  }

  return {
    owner,
    runOnce,
    /** Every NOTIFY_INTERVAL_SECONDS in this process (0: never); one run at a time; stop waits for it. */
    start(log: FastifyBaseLogger): () => Promise<void> {
      // Always on (webhook endpoints can be added at any time): one cheap claim per tick when idle.
      if (config.NOTIFY_INTERVAL_SECONDS === 0) return async () => {};
      let running: Promise<unknown> | null = null;
      const timer = setInterval(() => {
        if (running) return;
        running = runOnce()
          .then((r) => {
            if (r.sent || r.retrying || r.dead) log.info({ notifications: r }, 'notifications dispatched');
          })
          .catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'notification dispatch failed; retrying next tick'))
          .finally(() => {
            running = null;
          });
      }, config.NOTIFY_INTERVAL_SECONDS * 1000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
        mailer.close();
      };
    },
  };
}
export type Dispatcher = ReturnType<typeof createDispatcher>;
