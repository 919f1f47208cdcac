/**
 * Issue 12: "kill the server mid-dispatch and count". A real API process sends notification
 * mail to a real SMTP server (in this test process); it is killed with SIGKILL while the SMTP
 * server holds the first mail it received in full and has not yet answered 250. A second process
 * on the same database takes over once the dead one's leases run out: every notification arrives,
 * the one in flight twice (with the same Message-ID), none is lost.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { strongPassword, uniqueEmail } from '../harness';
import { startTestSmtp, type TestSmtp } from '../support/smtp';
import { createFreshDatabase, type FreshDatabase, http, PG_SERVER_URL, pgSuiteName, rows, type ServerProcess, spawnServer, waitFor } from './support';

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('notifications: a server killed mid-dispatch'), () => {
  const JWT_SECRET = randomBytes(32).toString('base64url');
  const SETUP_CODE = `KT${randomBytes(20).toString('hex').toUpperCase()}`;
  let db: FreshDatabase | undefined;
  let smtp: TestSmtp | undefined;
  const procs: ServerProcess[] = [];

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await smtp?.stop();
    await db?.drop();
  }, 60_000);

  it('SIGKILL between the SMTP server receiving a mail and its 250: the survivor delivers everything, nothing lost', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let first = true;
    let inFlight!: () => void;
    const reachedFirst = new Promise<void>((r) => {
      inFlight = r;
    });
    smtp = await startTestSmtp({
      beforeAccept: async () => {
        if (!first) return;
        first = false;
        inFlight();
        await held;
      },
    });
    db = await createFreshDatabase();
    const env = { DATABASE_URL: db.url, JWT_SECRET, SETUP_CODE, SMTP_URL: smtp.url, MAIL_FROM: 'keyturn@example.test', NOTIFY_INTERVAL_SECONDS: '1' };
    const a = await spawnServer('notify-a', env);
    procs.push(a);

    // An admin, then five rotation requests: five mails queued for the admin.
    const admin = await http<{ token: string }>(a.base, 'POST', '/api/setup', { setupCode: SETUP_CODE, email: uniqueEmail('admin'), password: strongPassword() });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    for (let i = 0; i < 5; i++) {
      const u = await http<{ token: string }>(a.base, 'POST', '/api/auth/register', { email: uniqueEmail(), password: strongPassword() });
      expect(u.status).toBe(201);
      const r = await http(a.base, 'POST', '/api/request_key_rotation', { reason: `kill test ${i}` }, u.body.token);
      expect(r.status).toBe(201);
    }
    const queued = await rows<{ n: number }>(db.observer, sql`select count(*)::int as n from notification_deliveries`);
    expect(Number(queued[0]!.n)).toBe(5);

    // A's dispatcher sends the first mail; the SMTP server holds its answer; A dies right there.
    await reachedFirst;
    await a.kill('SIGKILL');
    expect(smtp.received).toHaveLength(1);
    release();
    const leased = await rows<{ n: number }>(db.observer, sql`select count(*)::int as n from notification_deliveries where status = 'pending' and lease_owner like 'notify-a/%'`);
    expect(Number(leased[0]!.n)).toBeGreaterThanOrEqual(1);

    // A's leases run out (fast-forwarded here: 60 s in production), and B takes over.
    await rows(db.observer, sql`update notification_deliveries set lease_until = now() - interval '1 second' where lease_owner like 'notify-a/%'`);
    const b = await spawnServer('notify-b', { ...env, LOG_LEVEL: 'info' }).catch((e: Error) => {
      throw new Error(`${e.message}\nA's output:\n${a.output()}`);
    });
    procs.push(b);
    await waitFor(
      'every notification sent',
      async () => Number((await rows<{ n: number }>(db!.observer, sql`select count(*)::int as n from notification_deliveries where status = 'sent'`))[0]!.n) === 5,
      60_000,
      200,
    ).catch(async (e: Error) => {
      const state = await rows(db!.observer, sql`select status, attempts, lease_owner, lease_until, next_attempt_at, last_error from notification_deliveries`);
      throw new Error(`${e.message}\n${JSON.stringify(state, null, 1)}\nB's output:\n${b.output()}`);
    });
    const ids = smtp.received.map((m) => m.messageId);
    expect(new Set(ids).size).toBe(5); // none lost
    expect(ids.length).toBe(6); // the one in flight, twice
    const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
    expect(repeated).toBe(ids[0]);
  }, 120_000);
});
