/**
 * No secret material outside envelopes (issue 2 item 11; RELIABILITY D8, G6). Canary strings go
 * into secret names and values, every password (admin, users, wrong guesses, refused ones) and
 * the setup code; the real key bytes (each user's DEK and KEK, the admin's KEK, the AMK private
 * key, every session key) and the session tokens are recovered as canaries too. Then every table,
 * every debug-level log line, the audit export, /metrics, /openapi.json and every response body
 * (except the ones whose job is to return them) is grepped in raw, hex, base64 and base64url
 * forms: zero hits. The grep itself is checked so that a pass means something.
 */
import { randomBytes } from 'node:crypto';
import { openPendingADek, unlockKeyMaterial, unwrapAmkForAdmin } from '@keyturn/shared/crypto';
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { amkWraps } from '../src/db/schema';
import {
  api,
  type Canary,
  canary,
  canaryForms,
  describeBoth,
  dumpAllTables,
  expectError,
  findCanaries,
  json,
  queryRows,
  type Response,
  registerUser,
  setupAdmin,
  type TestUser,
  uniqueEmail,
  useTestApp,
} from './harness';

describe('canary grep (self-test)', () => {
  it('finds a canary in every form it checks, embedded at any offset', () => {
    const c = canary('Self');
    for (const f of canaryForms(c)) expect(findCanaries([c], { hay: `xx${f.text}yy` }), f.form).not.toEqual([]);
    for (const shift of [0, 1, 2, 3, 4]) {
      const embedded = Buffer.concat([randomBytes(shift), Buffer.from(c), randomBytes(5)]);
      for (const enc of ['base64', 'base64url', 'hex', 'latin1'] as const) {
        expect(findCanaries([c], { hay: embedded.toString(enc) }), `${enc}@${shift}`).not.toEqual([]);
      }
    }
    const key = randomBytes(32);
    for (const enc of ['base64', 'base64url', 'hex', 'latin1'] as const) {
      expect(findCanaries([key], { hay: Buffer.concat([randomBytes(7), key]).toString(enc) }), enc).not.toEqual([]);
    }
    expect(findCanaries([c, key], { hay: randomBytes(4096).toString('base64') })).toEqual([]);
  });
});

describeBoth('canaries', (backend) => {
  const setupCode = canary('SetupCode');
  const t = useTestApp(backend, { env: { SETUP_CODE: setupCode } });
  /** Plaintext that may appear only in the responses meant to return it. */
  const secretText: string[] = [];
  /** Passwords and codes: may appear nowhere at all (not even in responses). */
  const credentials: string[] = [setupCode];
  /** Key bytes and bearer material: nowhere on the server side (tables, logs, audit, metrics). */
  const keys: Canary[] = [];
  /** Response bodies that are not allowed to carry any of it. */
  const bodies: string[] = [];
  const record = (res: Response, mayCarrySecrets = false) => {
    if (!mayCarrySecrets) bodies.push(`${res.statusCode} ${res.body}`);
    return res;
  };
  const users: TestUser[] = [];
  let admin: TestUser;

  const pw = (label: string) => {
    const p = `${canary(label)} pass`;
    credentials.push(p);
    return p;
  };
  const secretOf = (label: string) => {
    const s = { name: `name ${canary(`${label}Name`)}`, value: `value ${canary(`${label}Value`)} ${'🔐'.repeat(3)}` };
    secretText.push(s.name, s.value);
    return s;
  };
  const tokenKeys = (u: { token: string }) => {
    keys.push(u.token);
    const claims = JSON.parse(Buffer.from(u.token.split('.')[1]!, 'base64url').toString()) as { sk: string };
    keys.push(Buffer.from(claims.sk, 'base64url'), claims.sk);
  };

  it('sets up with the configured setup code and a canary admin password', async () => {
    const prepared = await t.app.container.setup.prepareSetupCode();
    expect(prepared).toEqual({ code: setupCode, generated: false });
    // A wrong guess at the code is a credential too.
    const wrongCode = canary('WrongCode');
    credentials.push(wrongCode);
    record(await api(t.app).post('/api/setup', { setupCode: wrongCode, email: uniqueEmail('admin'), password: pw('RefusedAdmin') }));
    admin = await setupAdmin(t.app, { password: pw('AdminPw') });
    tokenKeys(admin);
  });

  it('registers users, logs in right and wrong, refuses bad input carrying canaries', async () => {
    for (const label of ['UserA', 'UserB']) {
      const u = await registerUser(t.app, { password: pw(`${label}Pw`) });
      users.push(u);
      tokenKeys(u);
    }
    const [a, b] = users as [TestUser, TestUser];
    // Wrong passwords, for a real and an unknown account.
    record(await api(t.app).post('/api/auth/login', { email: a.email, password: pw('WrongGuess') }));
    record(await api(t.app).post('/api/auth/login', { email: uniqueEmail('nobody'), password: pw('UnknownGuess') }));
    // Refused registrations: the password must not be echoed back or logged.
    record(await api(t.app).post('/api/auth/register', { email: 'not an email', password: pw('RefusedEmail') }));
    record(await api(t.app).post('/api/auth/register', { email: uniqueEmail(), password: `${pw('TooLong')}${'x'.repeat(1100)}` }));
    record(await api(t.app).post('/api/auth/register', { email: uniqueEmail(), password: pw('Extra'), role: 'admin' }));
    record(await api(t.app).post('/api/auth/register', { email: b.email.toUpperCase(), password: pw('Taken') }));
    record(await t.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ email: a.email, password: pw('TextPlain') }) }));
    record(await t.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"email":"${a.email}","password":"${pw('BadJson')}"` }));
    // A successful login, by bearer and by cookie, and a logout.
    const again = json<{ token: string; csrfToken: string }>(record(await api(t.app).post('/api/auth/login', { email: a.email, password: a.password }), true));
    tokenKeys(again);
    const cookie = `keyturn_session=${again.token}`;
    record(await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } }));
    record(await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie, 'x-csrf-token': again.csrfToken } }));
  });

  it('creates, reveals, changes and deletes secrets with canary names and values', async () => {
    const [a, b] = users as [TestUser, TestUser];
    const created: { id: string; owner: TestUser }[] = [];
    for (const [owner, label] of [
      [a, 'A1'],
      [a, 'A2'],
      [b, 'B1'],
    ] as const) {
      const res = await api(t.app, owner).post('/api/secrets', secretOf(label));
      expect(res.statusCode).toBe(201);
      created.push({ id: json<{ id: string }>(res).id, owner });
    }
    const [s1, s2, s3] = created as [(typeof created)[0], (typeof created)[0], (typeof created)[0]];
    // Reveal: the plaintext must come back here (and the grep must see it), nowhere else.
    const revealed = await api(t.app, a).get(`/api/secrets/${s1.id}`);
    expect(findCanaries([secretText[1]!], { revealed: revealed.body })).not.toEqual([]);
    record(await api(t.app, a).get('/api/secrets'), true);
    record(await api(t.app, a).put(`/api/secrets/${s1.id}`, secretOf('A1new')), true);
    record(await api(t.app, a).put(`/api/secrets/${s2.id}`, { value: secretOf('A2new').value }), true);
    record(await api(t.app, a).delete(`/api/secrets/${s2.id}`));
    // Refused writes carrying canaries: not echoed, not logged.
    const refused = secretOf('Refused');
    record(await api(t.app, a).post('/api/secrets', { name: `${refused.name}${'n'.repeat(200)}`, value: refused.value }));
    record(await api(t.app, a).post('/api/secrets', { ...refused, extra: refused.value }));
    record(await api(t.app, a).post('/api/secrets', { name: refused.name, value: `${refused.value}${'v'.repeat(70_000)}` }));
    record(await api(t.app, a).put(`/api/secrets/${s2.id}`, refused));
    // Another user's attempts on a's secrets.
    record(await api(t.app, b).get(`/api/secrets/${s1.id}`));
    record(await api(t.app, b).put(`/api/secrets/${s1.id}`, secretOf('Intruder')));
    // A corrupted row answers a generic 500 that must not carry the other secrets.
    await queryRows(t.database, `update secrets set value_ct = (select value_ct from secrets where id = '${s3.id}') where id = '${s1.id}'`);
    expectError(record(await api(t.app, a).get(`/api/secrets/${s1.id}`)), 500, 'INTERNAL');
  });

  it('recovers the real key bytes to use as canaries', async () => {
    const { authRepo } = t.app.container.repos;
    for (const u of [admin, ...users]) {
      const r = await authRepo.findUserWithKeys(t.database.db, u.id);
      const unlocked = await unlockKeyMaterial(u.id, u.password, r!.keys);
      expect(unlocked.ok).toBe(true);
      if (!unlocked.ok) return;
      keys.push(unlocked.dek, unlocked.kek);
      if (u === admin) {
        const [wrap] = await t.database.db.select().from(amkWraps).where(eq(amkWraps.adminId, admin.id));
        const amkPrivate = unwrapAmkForAdmin(unlocked.kek, wrap!.wrappedPrivate, admin.id, wrap!.amkId);
        keys.push(amkPrivate);
        // Sanity: that really is the AMK private key (it opens a user's pending A-DEK).
        const ur = await authRepo.findUserWithKeys(t.database.db, users[0]!.id);
        const escrowed = await openPendingADek(amkPrivate, ur!.keys.adekPending!, users[0]!.id, 1);
        expect(escrowed.length).toBe(32);
      }
    }
    expect(keys.filter((k) => typeof k !== 'string')).toHaveLength(3 * 2 + 1 + 4);
  });

  it('finds no canary in any table, log line, audit record, metric, OpenAPI text or response body', async () => {
    const dump = await dumpAllTables(t.database, { counters: true });
    const logs = t.logs.text();
    const audit = JSON.stringify(await t.app.container.audit.list({ limit: 200, offset: 0 }));
    const metrics = record(await api(t.app).get('/metrics')).body;
    const openapi = (await api(t.app).get('/openapi.json')).body;
    const haystacks = { dump, logs, audit, metrics, openapi };

    // The haystacks are real: the dump holds every table, the logs are at debug level and full.
    expect(dump).toContain('-- secrets (2 rows)');
    expect(dump).toMatch(/-- audit_events \(\d+ rows\)/);
    expect(t.logs.lines.length).toBeGreaterThan(40);
    expect(t.config.LOG_LEVEL).toBe('debug');
    expect(t.logs.entries().some((e) => Number(e.level) >= 50)).toBe(true); // the 500 above
    expect(logs).toContain('/api/auth/login');
    expect(bodies.length).toBeGreaterThan(15);

    expect(findCanaries([...credentials, ...secretText, ...keys], haystacks)).toEqual([]);
    expect(findCanaries([...credentials, ...secretText], { responses: bodies.join('\n') })).toEqual([]);
    // The redaction that keeps headers out of the logs is in force.
    expect(logs).not.toMatch(/authorization|x-csrf-token/i);
  });
});
