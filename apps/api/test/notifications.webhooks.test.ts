/**
 * Webhooks (issue 12; modules/notifications/README.md, "Webhooks"): admin-configured endpoints,
 * each with a secret shown once and stored only sealed; every notification is queued for every
 * endpoint in the change's transaction and POSTed by the dispatcher, signed per Standard Webhooks.
 * A real HTTP receiver verifies each request with the `standardwebhooks` package; it answers 500,
 * goes down, has the wrong secret; private addresses are refused, at creation and at delivery.
 */
import type { DeliveryList, WebhookCreated, WebhookEndpointList } from '@keyturn/shared';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkedAddresses, guardedLookup, isPrivateAddress } from '../src/modules/notifications/webhook-address';
import { newWebhookSecret } from '../src/modules/notifications/webhook-secrets';
import { sendWebhook } from '../src/modules/notifications/webhook-sender';
import { api, canary, createSecret, describeBoth, dumpAllTables, expectError, findCanaries, json, queryRows, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';
import { approveRecovery, requestRecovery } from './recovery.helpers';
import { auditFor, requestRotation, rotate, runSql } from './rotation.helpers';
import { startWebhookReceiver, type TestWebhookReceiver } from './support/webhook-receiver';

const WEBHOOKS = '/admin/api/notifications/webhooks';
interface DeliveryDbRow {
  id: string;
  idempotency_key: string;
  event: string;
  channel: string;
  recipient: string;
  status: string;
  attempts: number;
  last_error: string | null;
}

describeBoth('notifications: webhooks, signed, to a real HTTP receiver', (backend) => {
  let rx: TestWebhookReceiver;
  beforeAll(async () => {
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    await rx?.stop();
  });
  const t = useTestApp(backend, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', NOTIFY_MAX_ATTEMPTS: '3' } });
  let admin: TestUser;
  let endpoint: WebhookCreated;
  const dispatch = () => t.app.container.dispatcher.runOnce();
  const deliveries = () => queryRows<DeliveryDbRow>(t.database, `select * from notification_deliveries where channel = 'webhook' order by created_at, id`);
  const makeDue = () => runSql(t.database, `update notification_deliveries set next_attempt_at = now() - interval '1 second', lease_until = null where status in ('pending', 'retrying')`);
  const log = async (id = endpoint.id, q = '') => json<DeliveryList>(await api(t.app, admin).get(`${WEBHOOKS}/${id}/deliveries${q}`));

  it('an admin adds an endpoint: 201 with the secret (whsec_…) once; the list never shows it; the row holds it only sealed', async () => {
    admin = await setupAdmin(t.app);
    const res = await api(t.app, admin).post(WEBHOOKS, { url: rx.url, description: 'ops chat bridge' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    endpoint = json<WebhookCreated>(res);
    expect(endpoint).toMatchObject({ url: rx.url, description: 'ops chat bridge', disabled: false });
    // Standard Webhooks: whsec_ + base64 of 32 random bytes.
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(endpoint.secret.slice(6), 'base64')).toHaveLength(32);
    rx.secret = endpoint.secret;

    const list = await api(t.app, admin).get(WEBHOOKS);
    expect(list.statusCode).toBe(200);
    expect(json<WebhookEndpointList>(list).items).toEqual([{ id: endpoint.id, url: rx.url, description: 'ops chat bridge', disabled: false, createdAt: endpoint.createdAt }]);
    expect(list.body).not.toContain(endpoint.secret.slice(6));

    const [row] = await queryRows<{ secret_ct: Uint8Array; secret_key_version: number }>(t.database, `select secret_ct, secret_key_version from webhook_endpoints where id = '${endpoint.id}'`);
    // Format byte, 12-byte nonce, 32 bytes of ciphertext, 16-byte tag.
    expect(Buffer.from(row!.secret_ct)).toHaveLength(1 + 12 + 32 + 16);
    expect(Number(row!.secret_key_version)).toBe(1);

    const audit = await auditFor(t.database, `webhook:${endpoint.id}`);
    expect(audit.map((a) => [a.action, a.outcome, a.actor_id])).toEqual([['notification.webhook_created', 'success', admin.id]]);
    expect(audit[0]!.details).toEqual({ host: `127.0.0.1:${rx.port}` });
  });

  it('bad input is refused: not http(s), too long, unknown fields; only admins may touch endpoints', async () => {
    const user = await registerUser(t.app);
    for (const body of [{ url: 'ftp://example.com/x' }, { url: 'javascript:alert(1)' }, { url: `https://example.com/${'a'.repeat(2000)}` }, { url: rx.url, description: 'd'.repeat(201) }, { url: rx.url, secret: 'whsec_mine' }, {}]) {
      expectError(await api(t.app, admin).post(WEBHOOKS, body), 400, 'VALIDATION_FAILED');
    }
    expectError(await api(t.app, user).get(WEBHOOKS), 403, 'FORBIDDEN');
    expectError(await api(t.app, user).post(WEBHOOKS, { url: rx.url }), 403, 'FORBIDDEN');
    expectError(await api(t.app, user).delete(`${WEBHOOKS}/${endpoint.id}`), 403, 'FORBIDDEN');
    expectError(await api(t.app, user).get(`${WEBHOOKS}/${endpoint.id}/deliveries`), 403, 'FORBIDDEN');
    expectError(await api(t.app).get(WEBHOOKS), 401);
    expectError(await api(t.app, admin).get(`${WEBHOOKS}/00000000-0000-4000-8000-000000000000/deliveries`), 404, 'NOT_FOUND');
    expectError(await api(t.app, admin).delete(`${WEBHOOKS}/00000000-0000-4000-8000-000000000000`), 404, 'NOT_FOUND');
    expect((await api(t.app, admin).get(WEBHOOKS)).body).not.toContain('ftp:');
  });

  it('a rotation request is POSTed to the endpoint, signed: the receiver verifies it and gets the event, no secret', async () => {
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const queued = await deliveries();
    expect(queued.map((d) => [d.event, d.recipient, d.status, d.idempotency_key])).toEqual([['rotation.requested', endpoint.id, 'pending', `rotation.requested:${token.id}:webhook:${endpoint.id}`]]);
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    expect(rx.received).toHaveLength(1);
    const hit = rx.received[0]!;
    expect(hit.error).toBeUndefined();
    expect(hit.verified).toBe(true);
    expect(hit.headers).toMatchObject({ 'content-type': 'application/json', 'webhook-id': `rotation.requested:${token.id}:webhook:${endpoint.id}` });
    expect(hit.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(Math.abs(Number(hit.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(hit.payload).toEqual({
      type: 'rotation.requested',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: { about: token.id, title: 'Key rotation requested', body: expect.stringContaining(user.email), link: '/admin/key_rotation_management', security: false },
    });
    expect(hit.body).not.toContain(endpoint.secret.slice(6));
    expect((await deliveries())[0]!.status).toBe('sent');
    // The queue shows the webhook channel; nothing more to send.
    const queue = json<DeliveryList>(await api(t.app, admin).get('/admin/api/notifications/queue'));
    expect(queue.items[0]).toMatchObject({ channel: 'webhook', recipient: endpoint.id, status: 'sent', attempts: 1 });
    expect(await dispatch()).toEqual({ sent: 0, retrying: 0, dead: 0 });
  });

  it('the receiver’s check can fail: a tampered body, signature, id or timestamp, or another secret, does not verify', () => {
    const good = rx.received[0]!;
    const verify = (body: string, headers: Record<string, string>, secret = endpoint.secret) => () => new Webhook(secret).verify(body, headers);
    expect(verify(good.body, good.headers)).not.toThrow();
    expect(verify(good.body.replace('Key rotation requested', 'Key rotation approved'), good.headers)).toThrow(/signature/i);
    const sig = good.headers['webhook-signature']!;
    const flipped = `${sig.slice(0, 5)}${sig[5] === 'A' ? 'B' : 'A'}${sig.slice(6)}`;
    expect(verify(good.body, { ...good.headers, 'webhook-signature': flipped })).toThrow(/signature/i);
    expect(verify(good.body, { ...good.headers, 'webhook-id': `${good.headers['webhook-id']}x` })).toThrow(/signature/i);
    expect(verify(good.body, { ...good.headers, 'webhook-timestamp': String(Number(good.headers['webhook-timestamp']) + 1) })).toThrow(/signature/i);
    const other = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect(verify(good.body, good.headers, other)).toThrow(/signature/i);
  });

  it('receiver answers 500 → retrying with "HTTP 500" and a backoff; down → the network error; fixed → delivered with the same webhook-id', async () => {
    rx.status = 500;
    const token = await requestRotation(t, await registerUser(t.app));
    const before = rx.received.length;
    expect(await dispatch()).toEqual({ sent: 0, retrying: 1, dead: 0 });
    expect(rx.received.length).toBe(before + 1);
    expect(rx.received.at(-1)!.verified).toBe(true); // it arrived, signed; the receiver refused it
    let [d] = (await deliveries()).filter((x) => x.status !== 'sent');
    expect(d).toMatchObject({ status: 'retrying', attempts: 1, last_error: 'HTTP 500' });
    // Not due yet: the backoff holds it.
    expect(await dispatch()).toEqual({ sent: 0, retrying: 0, dead: 0 });

    await rx.stop();
    await makeDue();
    expect(await dispatch()).toEqual({ sent: 0, retrying: 1, dead: 0 });
    [d] = (await deliveries()).filter((x) => x.status !== 'sent');
    expect(d).toMatchObject({ status: 'retrying', attempts: 2, last_error: 'network error: ECONNREFUSED' });

    rx.status = 204;
    await rx.start();
    await makeDue();
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    const tries = rx.received.slice(before);
    expect(tries.map((r) => [r.status, r.verified])).toEqual([
      [500, true],
      [204, true],
    ]);
    // Receivers dedupe on webhook-id: the idempotency key, the same on every attempt.
    expect(new Set(tries.map((r) => r.headers['webhook-id']))).toEqual(new Set([`rotation.requested:${token.id}:webhook:${endpoint.id}`]));

    // The delivery log tells the story: attempts, the last error cleared, times.
    const entry = (await log()).items.find((i) => i.id === d!.id)!;
    expect(entry).toMatchObject({ channel: 'webhook', event: 'rotation.requested', status: 'sent', attempts: 3, lastError: null, nextAttemptAt: null });
    expect(new Date(entry.sentAt!).getTime()).toBeGreaterThanOrEqual(new Date(entry.createdAt).getTime());
  });

  it('a receiver with another secret refuses (401): the delivery retries, then dies after NOTIFY_MAX_ATTEMPTS, visible in the log; re-send delivers', async () => {
    rx.secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
    await requestRotation(t, await registerUser(t.app));
    for (let i = 0; i < 3; i++) {
      await makeDue();
      await dispatch();
    }
    expect(rx.received.slice(-3).map((r) => [r.verified, r.status, r.error])).toEqual(Array(3).fill([false, 401, expect.stringMatching(/signature/i)]));
    const dead = (await log(endpoint.id, '?status=dead')).items;
    expect(dead).toEqual([expect.objectContaining({ status: 'dead', attempts: 3, lastError: 'HTTP 401' })]);
    rx.secret = endpoint.secret;
    expect((await api(t.app, admin).post(`/admin/api/notifications/queue/${dead[0]!.id}/resend`)).statusCode).toBe(200);
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    expect(rx.received.at(-1)!.verified).toBe(true);
  });

  it('every notification goes to every endpoint; a deleted endpoint gets nothing more and its queued deliveries die with a reason', async () => {
    const second = json<WebhookCreated>(await api(t.app, admin).post(WEBHOOKS, { url: `${rx.url}?second=1` }));
    expect(second.secret).not.toBe(endpoint.secret);
    const token = await requestRotation(t, await registerUser(t.app));
    const rows = (await deliveries()).filter((d) => d.idempotency_key.startsWith(`rotation.requested:${token.id}:`));
    expect(rows.map((d) => d.recipient).sort()).toEqual([endpoint.id, second.id].sort());

    const del = await api(t.app, admin).delete(`${WEBHOOKS}/${second.id}`);
    expect(del.statusCode, del.body).toBe(200);
    expectError(await api(t.app, admin).get(`${WEBHOOKS}/${second.id}/deliveries`), 404, 'NOT_FOUND');
    const after = (await deliveries()).filter((d) => d.recipient === second.id);
    expect(after.map((d) => [d.status, d.last_error])).toEqual([['dead', 'the webhook endpoint was deleted']]);
    expect(json<WebhookEndpointList>(await api(t.app, admin).get(WEBHOOKS)).items.map((e) => e.id)).toEqual([endpoint.id]);
    expect(await queryRows(t.database, `select id from webhook_endpoints where id = '${second.id}'`)).toEqual([]);
    expect((await auditFor(t.database, `webhook:${second.id}`)).map((a) => [a.action, a.outcome, a.details])).toEqual([
      ['notification.webhook_created', 'success', { host: `127.0.0.1:${rx.port}` }],
      ['notification.webhook_deleted', 'success', { abandonedDeliveries: 1 }],
    ]);
    const before = rx.received.length;
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    expect(rx.received.slice(before).map((r) => r.headers['webhook-id'])).toEqual([`rotation.requested:${token.id}:webhook:${endpoint.id}`]);
  });

  it('canaries: the endpoint secret is nowhere but the creation answer (not the tables, logs, audit or a body); no user secret reaches a webhook', async () => {
    const admin2 = json<WebhookCreated>(await api(t.app, admin).post(WEBHOOKS, { url: rx.url, description: 'canary endpoint' }));
    const pw = `${canary('UserPw')} pass`;
    const u = await registerUser(t.app, { password: pw });
    const value = `value ${canary('Secret')}`;
    const name = `name ${canary('Name')}`;
    await createSecret(t.app, u, { name, value });
    const newPw = `${canary('NewPw')} pass`;
    rx.secret = endpoint.secret; // the second endpoint's requests fail verification at the receiver; they still arrive
    const r = await rotate(t, admin, u, { newPassword: newPw });
    const rec = `${canary('RecoveryPw')} pass`;
    const req = await requestRecovery(t.app, u.email, rec);
    await approveRecovery(t.app, admin, req.requestId);
    await dispatch();
    const bodies = rx.received.map((x) => `${JSON.stringify(x.headers)}\n${x.body}`).join('\n');
    const events = rx.received.filter((x) => x.verified).map((x) => (x.payload as { type: string }).type);
    expect(events).toEqual(expect.arrayContaining(['rotation.approved', 'rotation.completed', 'recovery.requested', 'recovery.approved']));
    const secrets = [endpoint.secret, admin2.secret].flatMap((s) => [s, s.slice(6), Buffer.from(s.slice(6), 'base64')]);
    const haystacks = {
      tables: await dumpAllTables(t.database),
      logs: t.logs.text(),
      audit: JSON.stringify(await queryRows(t.database, 'select * from audit_events order by seq')),
      list: (await api(t.app, admin).get(WEBHOOKS)).body,
      deliveryLog: JSON.stringify([await log(), await log(admin2.id)]),
      webhookBodies: bodies,
    };
    expect(haystacks.webhookBodies).toContain(u.email); // the grep sees the bodies
    expect(haystacks.tables).toContain(admin2.id); // and the endpoint rows
    expect(findCanaries(secrets, haystacks)).toEqual([]);
    const userCanaries = [pw, value, name, newPw, rec, r.approval.tempPassword, r.user.token, admin.password, admin.token];
    expect(findCanaries(userCanaries, { webhookBodies: bodies, deliveryLog: haystacks.deliveryLog })).toEqual([]);
  });
});

describe('notifications: webhooks refuse private addresses unless WEBHOOK_ALLOW_PRIVATE=true', () => {
  let rx: TestWebhookReceiver;
  beforeAll(async () => {
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    await rx?.stop();
  });
  const t = useTestApp('pglite', { env: { WEBHOOK_ALLOW_PRIVATE: 'false' } });
  let admin: TestUser;

  it('the ranges: loopback, private, link-local, unspecified (IPv4-mapped too) are private; public addresses are not', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-address']) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.15.255.255', '172.32.0.1', '192.169.0.1', '169.255.0.1', '11.0.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });

  it('creation: a loopback, private, link-local or localhost URL is 400 VALIDATION_FAILED with a clear message; nothing is stored; the refusal is audited', async () => {
    admin = await setupAdmin(t.app);
    for (const url of [rx.url, 'http://[::1]:8080/h', 'http://10.1.2.3/h', 'https://192.168.0.10/h', 'http://169.254.169.254/latest/meta-data/', 'http://0.0.0.0:9/', 'http://[::ffff:127.0.0.1]/h', `http://localhost:${rx.port}/h`]) {
      const e = expectError(await api(t.app, admin).post(WEBHOOKS, { url }), 400, 'VALIDATION_FAILED');
      expect(e.message, url).toMatch(/loopback, private or link-local address; webhook endpoints must be public \(WEBHOOK_ALLOW_PRIVATE=true allows them/);
    }
    const unresolvable = expectError(await api(t.app, admin).post(WEBHOOKS, { url: 'https://no-such-host.invalid/h' }), 400, 'VALIDATION_FAILED');
    expect(unresolvable.message).toMatch(/cannot be resolved/);
    expect(await queryRows(t.database, 'select id from webhook_endpoints')).toEqual([]);
    const denied = await queryRows<{ action: string; outcome: string }>(t.database, `select action, outcome from audit_events where action = 'notification.webhook_created'`);
    expect(denied.length).toBe(9);
    expect(denied.every((d) => d.outcome === 'denied')).toBe(true);
  });

  it('delivery: an endpoint that has come to point at a private address (DNS changed) is refused at delivery, not sent', async () => {
    // As if the endpoint had been public when created: the row is written directly.
    const id = '5f1b1c7e-0000-4000-8000-000000000001';
    const s = newWebhookSecret(t.config.jwtSecret, id);
    await t.database.rows((await import('drizzle-orm')).sql`insert into webhook_endpoints (id, url, secret_ct, secret_key_version) values (${id}, ${rx.url}, ${s.sealed}, ${s.keyVersion})`);
    rx.secret = `whsec_${s.raw.toString('base64')}`;
    await requestRotation(t, await registerUser(t.app));
    expect(await t.app.container.dispatcher.runOnce()).toEqual({ sent: 0, retrying: 1, dead: 0 });
    expect(rx.received).toEqual([]);
    const [d] = await queryRows<DeliveryDbRow>(t.database, `select * from notification_deliveries where channel = 'webhook'`);
    expect(d).toMatchObject({ status: 'retrying', recipient: id });
    expect(d!.last_error).toMatch(/^refused: 127\.0\.0\.1 is a loopback, private or link-local address/);
  });

  it('the connection’s own lookup is checked too: a name that resolves public for the check and private for the connection is refused', async () => {
    let calls = 0;
    const rebinding = async () => (calls++ === 0 ? [{ address: '203.0.113.7', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]);
    const r = await sendWebhook({ url: `http://rebind.example:${rx.port}/h`, id: 'msg_1', body: '{}', secret: Buffer.alloc(32, 1) }, { allowPrivate: false, resolve: rebinding });
    expect(r).toEqual({ ok: false, error: expect.stringMatching(/^refused: rebind\.example resolves to 127\.0\.0\.1/) });
    expect(calls).toBe(2);
    expect(rx.received).toEqual([]);
    // Any private address among several is enough to refuse.
    await expect(checkedAddresses('mixed.example', false, async () => [{ address: '203.0.113.7', family: 4 }, { address: '10.0.0.8', family: 4 }])).rejects.toThrow(/10\.0\.0\.8/);
    const lookupErr = await new Promise<Error | null>((resolve) => guardedLookup(false, async () => [{ address: 'fe80::1', family: 6 }])('x.example', { all: true }, (e) => resolve(e)));
    expect(lookupErr?.message).toMatch(/fe80::1/);
  });
});
