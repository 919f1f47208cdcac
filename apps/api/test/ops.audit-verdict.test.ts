/**
 * The audit verdict in status: GET /admin/api/rotation_status reports the LAST full verify's
 * verdict (when, ok or the first bad event, how many events it checked, the head it reached, how
 * many were appended since) and never walks the chain itself. Full verifies are run by the verify
 * endpoint, the CLI (ops.cli.test.ts) and the in-process scheduler; each records its verdict as a
 * maintenance run of kind `audit_verify`, shared by every instance through the database.
 */
import { type AuditVerify, type SystemStatus, SystemStatusSchema } from '@keyturn/shared';
import { afterEach, expect, it, vi } from 'vitest';
import { offsetClock } from '../src/lib/clock';
import { api, countRows, createSecret, describeBoth, json, queryRows, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';
import { runSql } from './rotation.helpers';

type Handle = ReturnType<typeof useTestApp>;

const status = async (t: Handle, admin: TestUser): Promise<SystemStatus> => {
  const res = await api(t.app, admin).get('/admin/api/rotation_status');
  expect(res.statusCode, res.body).toBe(200);
  return SystemStatusSchema.parse(json(res));
};

const verify = async (t: Handle, admin: TestUser, query = ''): Promise<AuditVerify> => {
  const res = await api(t.app, admin).get(`/admin/api/audit/verify${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return json<AuditVerify>(res);
};

/** Change one event behind the append-only trigger's back (a superuser could). */
async function tamper(t: Handle, seq: number, outcome: string): Promise<void> {
  await runSql(t.database, 'alter table audit_events disable trigger audit_events_no_update');
  try {
    await runSql(t.database, `update audit_events set outcome = '${outcome}' where seq = ${seq}`);
  } finally {
    await runSql(t.database, 'alter table audit_events enable trigger audit_events_no_update');
  }
}

const headSeq = async (t: Handle): Promise<number> =>
  Number((await queryRows<{ seq: string | number }>(t.database, 'select max(seq) as seq from audit_events'))[0]!.seq);

const verdictRows = (t: Handle) =>
  queryRows<{ instance: string; changes: Record<string, unknown> }>(t.database, `select instance, changes from maintenance_runs where kind = 'audit_verify' order by at`);

describeBoth('ops: audit verdict in status', (backend) => {
  const clock = offsetClock();
  const t = useTestApp(backend, { deps: { clock } });
  let admin: TestUser;
  /** Chain pages the audit repo reads: a full verify reads at least one, status none. */
  const pages = () => vi.spyOn(t.app.container.repos.auditRepo, 'page');

  afterEach(() => {
    vi.restoreAllMocks();
    clock.offsetMs = 0;
  });

  it('never verified: status says so, counts every event as unverified, and reads no chain page', async () => {
    admin = await setupAdmin(t.app);
    await registerUser(t.app);
    const spy = pages();
    const s = await status(t, admin);
    expect(spy).not.toHaveBeenCalled();
    expect(s.audit).toEqual({
      ok: false,
      checked: 0,
      firstBadSeq: null,
      verdict: 'never_verified',
      problem: null,
      verifiedAt: null,
      verifiedHead: null,
      appendedSince: await countRows(t.database, 'audit_events'),
    });
    expect(await countRows(t.database, 'maintenance_runs')).toBe(0);
    // the gauge is absent (unknown), neither 1 nor 0
    expect((await api(t.app).get('/metrics')).body).not.toMatch(/^keyturn_audit_chain_ok /m);
  });

  it('a verify (GET /admin/api/audit/verify) records its verdict, stamped with the database clock, and appends no audit event', async () => {
    const events = await countRows(t.database, 'audit_events');
    const spy = pages();
    const v = await verify(t, admin);
    expect(spy).toHaveBeenCalled();
    expect(v).toMatchObject({ ok: true, checked: events, firstBadSeq: null, head: { seq: events } });
    expect(await countRows(t.database, 'audit_events')).toBe(events);
    const rows = await verdictRows(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.instance).toBe(t.config.instanceId);
    expect(rows[0]!.changes).toMatchObject({ ok: true, checked: events, head: v.head, source: 'request' });

    spy.mockClear();
    const [db] = await queryRows<{ now: string | Date }>(t.database, 'select now() as now');
    const s = await status(t, admin);
    expect(spy).not.toHaveBeenCalled();
    expect(s.audit).toEqual({
      ok: true,
      checked: events,
      firstBadSeq: null,
      verdict: 'ok',
      problem: null,
      verifiedAt: expect.any(String),
      verifiedHead: v.head,
      appendedSince: 0,
    });
    expect(Math.abs(Date.parse(s.audit.verifiedAt!) - new Date(db!.now).getTime())).toBeLessThan(60_000);
    expect((await api(t.app).get('/metrics')).body).toMatch(/^keyturn_audit_chain_ok 1$/m);
  });

  it('events appended after the verified head are counted, without a walk; the verdict stays until the next verify', async () => {
    const before = await status(t, admin);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const head = await headSeq(t);
    const spy = pages();
    const s = await status(t, admin);
    expect(spy).not.toHaveBeenCalled();
    expect(s.audit.appendedSince).toBe(head - before.audit.verifiedHead!.seq);
    expect(s.audit.appendedSince).toBeGreaterThanOrEqual(2);
    expect({ ...s.audit, appendedSince: 0 }).toEqual(before.audit);

    // the verdict's time is the database's: a verify under a moved clock is stamped with it
    clock.offsetMs = 3_600_000;
    await verify(t, admin);
    const moved = await status(t, admin);
    expect(moved.audit).toMatchObject({ verdict: 'ok', appendedSince: 0, checked: head, verifiedHead: { seq: head } });
    expect(Date.parse(moved.audit.verifiedAt!) - Date.parse(before.audit.verifiedAt!)).toBeGreaterThan(3_000_000);
  });

  it('a tampered chain: status is unchanged until a verify finds it, then reports it until a later verify passes', async () => {
    clock.offsetMs = 7_200_000; // after the verdict of the test before, which was stamped an hour ahead
    const [victim] = await queryRows<{ seq: string | number; outcome: string }>(t.database, 'select seq, outcome from audit_events order by seq limit 1 offset 2');
    const seq = Number(victim!.seq);
    const before = await status(t, admin);
    expect(before.audit.verdict).toBe('ok');

    await tamper(t, seq, victim!.outcome === 'success' ? 'failure' : 'success');
    // status walks nothing, so it cannot see the edit yet
    const spy = pages();
    expect((await status(t, admin)).audit).toEqual(before.audit);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();

    const v = await verify(t, admin);
    expect(v).toMatchObject({ ok: false, firstBadSeq: seq, problem: 'content does not match its hash' });
    // Every admin is told, as a security notice (issue 12).
    const inbox = json<{ items: { event: string; security: boolean; body: string }[] }>(await api(t.app, admin).get('/api/notifications?unread=true&limit=100'));
    expect(inbox.items.find((i) => i.event === 'audit.verify_failed')).toMatchObject({ security: true, body: expect.stringContaining(`at event ${seq}`) });
    const broken = await status(t, admin);
    expect(broken.audit).toMatchObject({ ok: false, verdict: 'broken', firstBadSeq: seq, problem: 'content does not match its hash', verifiedHead: null, appendedSince: 0 });
    expect(broken.audit.checked).toBe(seq - 1);
    expect((await api(t.app).get('/metrics')).body).toMatch(/^keyturn_audit_chain_ok 0$/m);
    // it stays broken as events are appended: nothing but a passing verify clears it
    const headThen = await headSeq(t);
    await registerUser(t.app);
    expect((await status(t, admin)).audit).toMatchObject({ verdict: 'broken', firstBadSeq: seq, appendedSince: (await headSeq(t)) - headThen });
    expect(await headSeq(t)).toBeGreaterThan(headThen);

    // put the event back as it was: still reported broken until a verify passes
    await tamper(t, seq, victim!.outcome);
    expect((await status(t, admin)).audit.verdict).toBe('broken');
    clock.offsetMs = 7_300_000;
    expect((await verify(t, admin)).ok).toBe(true);
    expect((await status(t, admin)).audit).toMatchObject({ ok: true, verdict: 'ok', firstBadSeq: null, problem: null, appendedSince: 0 });
    expect((await api(t.app).get('/metrics')).body).toMatch(/^keyturn_audit_chain_ok 1$/m);
  });

  it('a verify against a checkpoint that does not match is recorded as broken too', async () => {
    clock.offsetMs = 7_400_000;
    const good = await verify(t, admin);
    const wrong = good.head!.hash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    clock.offsetMs = 7_500_000;
    const v = await verify(t, admin, `?checkpointSeq=${good.head!.seq}&checkpointHash=${wrong}`);
    expect(v).toMatchObject({ ok: false, firstBadSeq: good.head!.seq });
    expect((await status(t, admin)).audit).toMatchObject({ ok: false, verdict: 'broken', firstBadSeq: good.head!.seq, problem: v.problem });
    clock.offsetMs = 7_600_000;
    expect((await verify(t, admin, `?checkpointSeq=${good.head!.seq}&checkpointHash=${good.head!.hash}`)).ok).toBe(true);
    expect((await status(t, admin)).audit.verdict).toBe('ok');
  });

  it('due(): a verdict recorded within the window (by any instance) makes the next scheduled verify wait', async () => {
    const verdicts = t.app.container.auditVerdicts;
    clock.offsetMs = 7_600_000; // the last verdict's time
    expect(await verdicts.due(600)).toBe(false);
    clock.offsetMs = 7_600_000 + 601_000;
    expect(await verdicts.due(600)).toBe(true);
  });

  it('a non-admin cannot run a verify or read the verdict, and records nothing', async () => {
    const runs = await countRows(t.database, 'maintenance_runs');
    const user = await registerUser(t.app);
    expect((await api(t.app, user).get('/admin/api/audit/verify')).statusCode).toBe(403);
    expect((await api(t.app).get('/admin/api/audit/verify')).statusCode).toBe(401);
    expect((await api(t.app, user).get('/admin/api/rotation_status')).statusCode).toBe(403);
    expect(await countRows(t.database, 'maintenance_runs')).toBe(runs);
  });
});

describeBoth('ops: audit verify scheduler', (backend) => {
  const t = useTestApp(backend, { env: { AUDIT_VERIFY_INTERVAL_SECONDS: '1' } });

  /** Runs the scheduler until `done` or a deadline; then stops it (waiting for a run in flight). */
  async function schedulerUntil(done: () => Promise<boolean>): Promise<void> {
    const stop = t.app.container.maintenance.startScheduler(t.app.log);
    try {
      const deadline = Date.now() + 20_000;
      while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    } finally {
      await stop();
    }
  }

  it('records a verdict on its own interval (cleanup and recover stay off), then catches a tampered event', async () => {
    expect(t.config.MAINTENANCE_INTERVAL_SECONDS).toBe(0);
    const admin = await setupAdmin(t.app);
    expect((await status(t, admin)).audit.verdict).toBe('never_verified');

    await schedulerUntil(async () => (await verdictRows(t)).length > 0);
    const rows = await verdictRows(t);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows[0]).toMatchObject({ instance: t.config.instanceId, changes: { ok: true, source: 'scheduler' } });
    expect(await countRows(t.database, 'maintenance_runs', `kind <> 'audit_verify'`)).toBe(0);
    const s = await status(t, admin);
    expect(s.audit).toMatchObject({ ok: true, verdict: 'ok', checked: await countRows(t.database, 'audit_events'), appendedSince: 0 });
    expect(t.logs.entries().some((e) => e.msg === 'audit chain verified')).toBe(true);

    const [victim] = await queryRows<{ seq: string | number }>(t.database, 'select seq from audit_events order by seq limit 1');
    await tamper(t, Number(victim!.seq), 'denied');
    expect((await status(t, admin)).audit.verdict).toBe('ok');
    await schedulerUntil(async () => (await status(t, admin)).audit.verdict === 'broken');
    expect((await status(t, admin)).audit).toMatchObject({ ok: false, verdict: 'broken', firstBadSeq: Number(victim!.seq) });
    const failed = t.logs.entries().filter((e) => e.level === 50 && /audit chain verify FAILED/.test(String(e.msg)));
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed[0]).toMatchObject({ firstBadSeq: Number(victim!.seq) });

    // stopped: no further verdicts
    const n = (await verdictRows(t)).length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await verdictRows(t)).length).toBe(n);
  }, 60_000);
});
