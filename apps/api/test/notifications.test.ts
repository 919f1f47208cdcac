/**
 * Notifications (issue 12; modules/notifications/README.md): the in-app inbox and the email
 * outbox are written in the state change's transaction; a real SMTP server (in-process, loopback)
 * receives what the dispatcher sends, through an outage, a crash between sending and marking
 * sent, two dispatchers at once, and dead letters; nothing secret in any of it.
 */
import type { ChannelStatus, DeliveryList, InboxList } from '@keyturn/shared';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDispatcher } from '../src/modules/notifications/dispatcher';
import { api, canary, createSecret, describeBoth, dumpAllTables, expectError, findCanaries, json, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import { approveRecovery, requestRecovery } from './recovery.helpers';
import { approveRotation, executeRes, faultHooks, finalizeRes, requestRotation, rejectRes, rotate, runSql } from './rotation.helpers';
import { startTestSmtp, type TestSmtp } from './support/smtp';

const inbox = async (app: Parameters<typeof api>[0], u: TestUser, unread = false) => json<InboxList>(await api(app, u).get(`/api/notifications?limit=100${unread ? '&unread=true' : ''}`));

describeBoth('notifications: the in-app inbox', (backend) => {
  const faults = faultHooks();
  const t = useTestApp(backend, { deps: { rotationHooks: faults.hooks } });
  let admin: TestUser;
  let user: TestUser;

  it('every event of a rotation reaches its recipients’ inboxes, in the transaction of the change', async () => {
    admin = await setupAdmin(t.app);
    user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const adminInbox = await inbox(t.app, admin, true);
    expect(adminInbox.unread).toBe(1);
    expect(adminInbox.items[0]).toMatchObject({ event: 'rotation.requested', link: '/admin/key_rotation_management', security: false, readAt: null });
    expect(adminInbox.items[0]!.body).toContain(user.email);

    const approval = await approveRotation(t, admin, token.id);
    const mine = await inbox(t.app, user, true);
    expect(mine.items.map((i) => i.event)).toEqual(['rotation.approved']);
    expect(mine.items[0]!.body).toMatch(/Ask your administrator for the temporary password; it expires at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    // The temporary password itself is in no notification.
    expect(JSON.stringify(mine)).not.toContain(approval.tempPassword);

    const res = await executeRes(t, user, { tokenId: token.id, tempPassword: approval.tempPassword });
    expect(res.statusCode).toBe(200);
    user = { ...user, token: json<{ session: { token: string } }>(res).session.token };
    expect((await inbox(t.app, user, true)).items.map((i) => i.event)).toEqual(['rotation.completed', 'rotation.approved']);
    expect((await inbox(t.app, admin, true)).items.map((i) => i.event)).toEqual(['rotation.completed', 'rotation.requested']);
    expect((await finalizeRes(t, admin, token.id)).statusCode).toBe(200);
    expect((await inbox(t.app, user, true)).items[0]!.event).toBe('rotation.finalized');

    const other = await registerUser(t.app);
    const rejected = await requestRotation(t, other);
    expect((await rejectRes(t, admin, rejected.id)).statusCode).toBe(200);
    expect((await inbox(t.app, other)).items.map((i) => i.event)).toEqual(['rotation.rejected']);
  });

  it('mark as read, mark all as read; another user’s item is 404', async () => {
    const before = await inbox(t.app, admin, true);
    expect(before.unread).toBeGreaterThan(1);
    const first = before.items[0]!;
    expect((await api(t.app, admin).post(`/api/notifications/${first.id}/read`)).statusCode).toBe(200);
    expect((await inbox(t.app, admin, true)).unread).toBe(before.unread - 1);
    expectError(await api(t.app, user).post(`/api/notifications/${first.id}/read`), 404, 'NOT_FOUND');
    const all = json<{ updated: number }>(await api(t.app, admin).post('/api/notifications/read_all'));
    expect(all.updated).toBe(before.unread - 1);
    expect((await inbox(t.app, admin, true)).unread).toBe(0);
    expectError(await api(t.app).get('/api/notifications'), 401);
  });

  it('a rolled-back change notifies nobody: a rotation that fails before COMMIT leaves no "completed", only "failed" for admins', async () => {
    const u = await registerUser(t.app);
    await createSecret(t.app, u, { name: 'n', value: 'v' });
    const token = await requestRotation(t, u);
    const approval = await approveRotation(t, admin, token.id);
    faults.failAt(token.id, 'beforeCommit');
    expect((await executeRes(t, u, { tokenId: token.id, tempPassword: approval.tempPassword })).statusCode).toBeGreaterThanOrEqual(400);
    expect((await inbox(t.app, u)).items.map((i) => i.event)).toEqual(['rotation.approved']);
    const [n] = await queryRows<{ n: number }>(t.database, `select count(*)::int as n from notification_inbox where event = 'rotation.completed' and body like '%${token.id.slice(0, 8)}%'`);
    expect(Number(n!.n)).toBe(0);
    expect((await inbox(t.app, admin, true)).items.map((i) => i.event)).toContain('rotation.failed');
  });

  it('recovery and a new admin are security notices to the user and every admin', async () => {
    const u = await registerUser(t.app);
    const req = await requestRecovery(t.app, u.email, strongPassword());
    await approveRecovery(t.app, admin, req.requestId);
    const items = (await inbox(t.app, u)).items;
    expect(items.map((i) => [i.event, i.security])).toEqual([
      ['recovery.approved', true],
      ['recovery.requested', true],
    ]);
    expect(items[0]!.body).toContain(admin.email);
    const add = await api(t.app, admin).post('/admin/api/admins', { email: `second-${Date.now()}@example.test`, password: strongPassword(), adminPassword: admin.password });
    expect(add.statusCode).toBe(201);
    expect((await inbox(t.app, admin, true)).items[0]).toMatchObject({ event: 'admin.created', security: true });
  });

  it('an interrupted rotation settled by recover tells the admins', async () => {
    const u = await registerUser(t.app);
    const token = await requestRotation(t, u);
    await runSql(t.database, `update rotation_tokens set status = 'in_progress', locked_at = now() - interval '1 day', lock_owner = 'gone/1' where id = '${token.id}'`);
    const res = await api(t.app, admin).post('/admin/api/maintenance/recover');
    expect(res.statusCode, res.body).toBe(200);
    const failed = (await inbox(t.app, admin, true)).items.find((i) => i.event === 'rotation.failed' && i.body.includes(token.id.slice(0, 8)));
    expect(failed?.body).toContain('INTERRUPTED');
    expect(failed?.body).toContain(u.email);
  });

  it('with email off (no SMTP_URL) nothing is queued for email, and the channel says so', async () => {
    const [n] = await queryRows<{ n: number }>(t.database, 'select count(*)::int as n from notification_deliveries');
    expect(Number(n!.n)).toBe(0);
    const ch = json<ChannelStatus>(await api(t.app, admin).get('/admin/api/notifications/channels'));
    expect(ch.email).toMatchObject({ enabled: false, degraded: false });
    const test = await api(t.app, admin).post('/admin/api/notifications/test_email', {});
    expect(json(test)).toMatchObject({ ok: false, response: expect.stringContaining('SMTP_URL') });
    expectError(await api(t.app, user).get('/admin/api/notifications/queue'), 403, 'FORBIDDEN');
  });
});

describeBoth('notifications: email through a real SMTP server', (backend) => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startTestSmtp();
  });
  afterAll(async () => {
    await smtp?.stop();
  });
  const crash: { afterSend?: () => Promise<void> } = {};
  const t = useTestApp(backend, {
    env: {
      NOTIFY_MAX_ATTEMPTS: '3',
      MAIL_FROM: 'keyturn@example.test',
      // The port is known once the SMTP server runs (its beforeAll runs first).
      get SMTP_URL() {
        return smtp.url;
      },
    },
    deps: { notificationHooks: { afterSend: async () => crash.afterSend?.() } },
  });
  let admin: TestUser;
  let user: TestUser;
  const dispatch = () => t.app.container.dispatcher.runOnce();
  const deliveries = () => queryRows<{ id: string; status: string; attempts: number; recipient: string; last_error: string | null; event: string }>(t.database, 'select * from notification_deliveries order by created_at, id');
  const makeDue = () => runSql(t.database, `update notification_deliveries set next_attempt_at = now() - interval '1 second', lease_until = null where status in ('pending', 'retrying')`);

  it('a rotation request is mailed to every admin, plain text and HTML, with a Message-ID from its idempotency key', async () => {
    admin = await setupAdmin(t.app);
    user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    expect((await deliveries()).map((d) => [d.event, d.recipient, d.status])).toEqual([['rotation.requested', admin.email, 'pending']]);
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0]!;
    expect(mail.to).toEqual([admin.email]);
    expect(mail.from).toBe('keyturn@example.test');
    expect(mail.subject).toBe('[Keyturn] Key rotation requested');
    expect(mail.raw).toMatch(/Content-Type: text\/plain/i);
    expect(mail.raw).toMatch(/Content-Type: text\/html/i);
    expect(mail.raw).toContain(token.id.slice(0, 8));
    expect(mail.messageId).toMatch(/^<[0-9a-f]{32}@keyturn>$/);
    expect((await deliveries())[0]!.status).toBe('sent');
    // Nothing more to send.
    expect(await dispatch()).toEqual({ sent: 0, retrying: 0, dead: 0 });
  });

  it('SMTP down → retrying with the error and a backoff; back up → delivered; the channel reports both', async () => {
    await smtp.stop();
    const before = smtp.received.length;
    const token = await requestRotation(t, await registerUser(t.app));
    expect(await dispatch()).toEqual({ sent: 0, retrying: 1, dead: 0 });
    const [d] = (await deliveries()).filter((x) => x.status !== 'sent');
    expect(d).toMatchObject({ status: 'retrying', attempts: 1 });
    expect(d!.last_error).toMatch(/ECONNREFUSED|connect/i);
    // Not due yet: the backoff holds it.
    expect(await dispatch()).toEqual({ sent: 0, retrying: 0, dead: 0 });
    let ch = json<ChannelStatus>(await api(t.app, admin).get('/admin/api/notifications/channels'));
    expect(ch.email).toMatchObject({ enabled: true, from: 'keyturn@example.test', lastError: expect.stringMatching(/ECONNREFUSED|connect/i) });
    expect(ch.queue.retrying).toBe(1);
    const queue = json<DeliveryList>(await api(t.app, admin).get('/admin/api/notifications/queue?status=retrying'));
    expect(queue.items).toEqual([expect.objectContaining({ id: d!.id, status: 'retrying', attempts: 1, lastError: expect.any(String) })]);

    expect(ch.email.degraded).toBe(false);
    // Failing for more than 15 minutes turns the channel amber.
    await runSql(t.database, `update system_settings set value = value || jsonb_build_object('failingSince', to_char((now() - interval '16 minutes') at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) where key = 'notifications.email'`);
    expect(json<ChannelStatus>(await api(t.app, admin).get('/admin/api/notifications/channels')).email.degraded).toBe(true);
    // …and the health page's status says so.
    expect(json<{ notifications: unknown }>(await api(t.app, admin).get('/admin/api/rotation_status')).notifications).toEqual({ emailEnabled: true, emailDegraded: true, dead: 0 });

    await smtp.start();
    await makeDue();
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
    expect(smtp.received.length).toBe(before + 1);
    expect(smtp.received.at(-1)!.raw).toContain(token.id.slice(0, 8));
    ch = json<ChannelStatus>(await api(t.app, admin).get('/admin/api/notifications/channels'));
    expect(ch.email.degraded).toBe(false);
    expect(new Date(ch.email.lastSuccessAt!).getTime()).toBeGreaterThanOrEqual(new Date(ch.email.lastFailureAt!).getTime());
  });

  it('too many failures → dead, visible to admins; re-send puts it back and it is delivered', async () => {
    await smtp.stop();
    await requestRotation(t, await registerUser(t.app));
    for (let i = 0; i < 3; i++) {
      await makeDue();
      await dispatch();
    }
    const dead = (await deliveries()).filter((x) => x.status === 'dead');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.attempts).toBe(3);
    expect(json<ChannelStatus>(await api(t.app, admin).get('/admin/api/notifications/channels')).queue.dead).toBe(1);
    expectError(await api(t.app, admin).post(`/admin/api/notifications/queue/${(await deliveries()).find((x) => x.status === 'sent')!.id}/resend`), 409, 'INVALID_STATE');
    expect((await api(t.app, admin).post(`/admin/api/notifications/queue/${dead[0]!.id}/resend`)).statusCode).toBe(200);
    await smtp.start();
    expect(await dispatch()).toEqual({ sent: 1, retrying: 0, dead: 0 });
  });

  it('a crash between the server accepting a mail and marking it sent repeats that mail (same Message-ID); nothing is lost', async () => {
    await requestRotation(t, await registerUser(t.app));
    await requestRotation(t, await registerUser(t.app));
    const before = smtp.received.length;
    // The dispatcher "dies" right after the first mail was accepted: its rows stay leased.
    crash.afterSend = async () => {
      crash.afterSend = undefined;
      throw new Error('process killed');
    };
    await expect(dispatch()).rejects.toThrow('process killed');
    expect(smtp.received.length).toBe(before + 1);
    const leased = (await deliveries()).filter((x) => x.status === 'pending');
    expect(leased).toHaveLength(2);
    // Another dispatcher waits for the lease: nothing is sent twice while it is held.
    expect(await dispatch()).toEqual({ sent: 0, retrying: 0, dead: 0 });
    await runSql(t.database, `update notification_deliveries set lease_until = now() - interval '1 second' where status = 'pending'`);
    expect(await dispatch()).toEqual({ sent: 2, retrying: 0, dead: 0 });
    const ids = smtp.received.slice(before).map((m) => m.messageId);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(2); // one repeated, none lost
    expect((await deliveries()).every((x) => x.status === 'sent' || x.status === 'dead')).toBe(true);
  });

  it('two dispatchers at once deliver each notification exactly once', async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => registerUser(t.app)));
    for (const u of users) await requestRotation(t, u);
    const other = createDispatcher({
      db: t.database.db,
      repo: t.app.container.repos.notificationsRepo,
      mailer: (await import('../src/modules/notifications/mailer')).createMailer(t.config),
      metrics: t.app.container.metrics,
      config: t.config,
    });
    const before = smtp.received.length;
    const [a, b] = await Promise.all([dispatch(), other.runOnce()]);
    expect(a.sent + b.sent).toBe(6);
    expect(smtp.received.length - before).toBe(6);
    expect(new Set(smtp.received.slice(before).map((m) => m.messageId)).size).toBe(6);
  });

  it('the test email reports the SMTP server’s answer', async () => {
    const res = await api(t.app, admin).post('/admin/api/notifications/test_email', {});
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toMatchObject({ ok: true, response: expect.stringMatching(/^250/) });
    expect(smtp.received.at(-1)!.to).toEqual([admin.email]);
    await smtp.stop();
    const down = json<{ ok: boolean; response: string }>(await api(t.app, admin).post('/admin/api/notifications/test_email', { to: 'ops@example.test' }));
    expect(down.ok).toBe(false);
    expect(down.response).toMatch(/ECONNREFUSED|connect/i);
    await smtp.start();
  });

  it('canaries: no password, temporary password, secret or token in any inbox item, queued mail, received mail or log', async () => {
    const pw = `${canary('UserPw')} pass`;
    const u = await registerUser(t.app, { password: pw });
    const secret = `value ${canary('Secret')}`;
    await createSecret(t.app, u, { name: `name ${canary('Name')}`, value: secret });
    const newPw = `${canary('NewPw')} pass`;
    const r = await rotate(t, admin, u, { newPassword: newPw });
    const rec = `${canary('RecoveryPw')} pass`;
    const req = await requestRecovery(t.app, u.email, rec);
    await approveRecovery(t.app, admin, req.requestId);
    await dispatch();
    const canaries = [pw, secret, newPw, rec, r.approval.tempPassword, r.user.token, admin.password, admin.token];
    const haystacks = {
      tables: await dumpAllTables(t.database),
      mail: smtp.received.map((m) => m.raw).join('\n'),
      logs: t.logs.text(),
      inbox: JSON.stringify(await inbox(t.app, u)),
    };
    expect(haystacks.mail).toContain(u.email); // the grep sees the mails
    expect(findCanaries(canaries, haystacks)).toEqual([]);
  });
});
