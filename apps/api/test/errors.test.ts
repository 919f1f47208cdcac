/**
 * The one error contract, across routes (issue 2 item 9; RELIABILITY A1, A2, A3, A4, A5, A8):
 * `{error:{code,message,requestId,details?}}` for unknown routes, wrong methods, wrong content
 * types (415), oversize bodies (413 before any argon2), malformed JSON, prototype poisoning and
 * unknown fields (400 with field details). Refused input changes nothing, is logged as a security
 * event under the same request id, and no body ever carries a stack, SQL or a file path.
 */
import type { Secret } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { api, countRows, describeBoth, dumpAllTables, expectError, json, registerUser, setupAdmin, type Response, type TestUser, useTestApp } from './harness';

const BODY_LIMIT = 1_048_576;

describeBoth('error contract', (backend) => {
  const t = useTestApp(backend);
  let user: TestUser;
  /** Every error body seen in this file, checked at the end for leaks. */
  const errorBodies: string[] = [];
  const seen = (res: Response) => {
    if (res.statusCode >= 400) errorBodies.push(res.body);
    return res;
  };
  const raw = (method: 'POST' | 'PUT', url: string, payload: string | Buffer, contentType: string | undefined, auth?: TestUser) =>
    t.app
      .inject({
        method,
        url,
        payload,
        headers: { ...(contentType ? { 'content-type': contentType } : {}), ...(auth ? { authorization: `Bearer ${auth.token}` } : {}) },
      })
      .then(seen);
  const kdf = () => t.app.container.metrics.kdfCount.get();

  it('sets up a user', async () => {
    await setupAdmin(t.app);
    user = await registerUser(t.app);
  });

  /** The JSON-body endpoints of this module set, with a body each would accept. */
  const endpoints = () =>
    [
      { url: '/api/auth/register', body: { email: 'new-user@example.test', password: 'a fine long passphrase' }, auth: undefined },
      { url: '/api/auth/login', body: { email: user.email, password: user.password }, auth: undefined },
      { url: '/api/setup', body: { setupCode: 'whatever-code', email: 'x@example.test', password: 'a fine long passphrase' }, auth: undefined },
      { url: '/api/secrets', body: { name: 'n', value: 'v' }, auth: user },
    ] as const;

  it('answers unknown routes with the JSON 404 body', async () => {
    for (const [method, url] of [
      ['GET', '/api/nope'],
      ['POST', '/api/nope'],
      ['GET', '/admin/api/nope'],
      ['GET', '/nope'],
      ['GET', '/api/secrets/00000000-0000-4000-8000-000000000000/extra'],
    ] as const) {
      const res = seen(await t.app.inject({ method, url, headers: { accept: 'text/html' } }));
      expectError(res, 404, 'NOT_FOUND');
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('answers wrong methods on POST-only routes with 404, and TRACE is never 200', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'TRACE'] as const) {
      const res = seen(await t.app.inject({ method: method as 'GET', url: '/api/auth/login' }));
      expect(res.statusCode, `${method}: ${res.body}`).toBe(404);
      expectError(res, 404, 'NOT_FOUND');
    }
  });

  it('answers 415 to text/plain, form, multipart and missing content types, with no key derivation and no change', async () => {
    const before = await dumpAllTables(t.database);
    const k = kdf();
    for (const e of endpoints()) {
      const asJson = JSON.stringify(e.body);
      for (const [ct, payload] of [
        ['text/plain', asJson],
        ['text/plain;charset=UTF-8', asJson],
        ['application/x-www-form-urlencoded', new URLSearchParams(e.body as unknown as Record<string, string>).toString()],
        ['multipart/form-data; boundary=XyZ', `--XyZ\r\nContent-Disposition: form-data; name="email"\r\n\r\nx@example.test\r\n--XyZ--\r\n`],
        [undefined, asJson],
      ] as const) {
        const res = await raw('POST', e.url, payload, ct, e.auth);
        expect(res.statusCode, `${e.url} ${ct}: ${res.body}`).toBe(415);
        expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      }
    }
    expect(kdf()).toBe(k);
    expect(await dumpAllTables(t.database)).toBe(before);
  });

  it('answers 413 to a body one byte over the limit, before parsing and before any key derivation', async () => {
    const before = await dumpAllTables(t.database);
    const k = kdf();
    for (const e of endpoints()) {
      const key = 'password' in e.body ? 'password' : 'value';
      const skeleton = JSON.stringify({ ...e.body, [key]: '' });
      const body = JSON.stringify({ ...e.body, [key]: 'x'.repeat(BODY_LIMIT + 1 - Buffer.byteLength(skeleton)) });
      expect(Buffer.byteLength(body)).toBe(BODY_LIMIT + 1);
      const res = await raw('POST', e.url, body, 'application/json', e.auth);
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    }
    // The boundary: a body of exactly the limit is parsed (and then refused by the schema).
    const atLimit = JSON.stringify({ email: user.email, password: '' });
    const exact = JSON.stringify({ email: user.email, password: 'p'.repeat(BODY_LIMIT - Buffer.byteLength(atLimit)) });
    expect(Buffer.byteLength(exact)).toBe(BODY_LIMIT);
    expectError(await raw('POST', '/api/auth/login', exact, 'application/json'), 400, 'VALIDATION_FAILED');
    // A 1 MiB password is refused the same way.
    const res = await raw('POST', '/api/auth/login', JSON.stringify({ email: user.email, password: 'p'.repeat(BODY_LIMIT) }), 'application/json');
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(kdf()).toBe(k);
    expect(await dumpAllTables(t.database)).toBe(before);
  });

  it('refuses an over-long password inside the body limit with 400 and no key derivation', async () => {
    const k = kdf();
    const res = seen(await api(t.app).post('/api/auth/login', { email: user.email, password: 'p'.repeat(10_000) }));
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(err.details).toEqual([expect.objectContaining({ field: 'body.password' })]);
    expect(kdf()).toBe(k);
  });

  it('answers malformed JSON with 400, changing nothing and deriving nothing', async () => {
    const before = await dumpAllTables(t.database);
    const k = kdf();
    const cases = [
      '{"email":"a@b.cd","password":"x"',
      '{"email":"a@b.cd","password":"x",}',
      '{"email":"a@b.cd","password":NaN}',
      "{'email':'a@b.cd'}",
      '{"email":"a@b.cd" "password":"x"}',
      '',
      'null',
      '"a string"',
      '12345',
      '[]',
      '[{"email":"a@b.cd","password":"x"}]',
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
      '{"email":"a@b.cd","password":"x"}garbage',
    ];
    for (const e of endpoints()) {
      for (const body of cases) {
        const res = await raw('POST', e.url, body, 'application/json', e.auth);
        expect(res.statusCode, `${e.url} ${body.slice(0, 40)}: ${res.body}`).toBe(400);
        expectError(res, 400, 'VALIDATION_FAILED');
      }
    }
    expect(kdf()).toBe(k);
    expect(await dumpAllTables(t.database)).toBe(before);
  });

  it('refuses bodies that are not valid UTF-8 with 400 instead of silently replacing bytes', async () => {
    const before = await dumpAllTables(t.database);
    const k = kdf();
    const invalid = [[0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]];
    for (const bad of invalid) {
      const login = Buffer.concat([Buffer.from(`{"email":"${user.email}","password":"${user.password}`), Buffer.from(bad), Buffer.from('"}')]);
      expectError(await raw('POST', '/api/auth/login', login, 'application/json'), 400, 'VALIDATION_FAILED');
      const secret = Buffer.concat([Buffer.from('{"name":"n","value":"a'), Buffer.from(bad), Buffer.from('b"}')]);
      expectError(await raw('POST', '/api/secrets', secret, 'application/json; charset=utf-8', user), 400, 'VALIDATION_FAILED');
    }
    expect(kdf()).toBe(k);
    expect(await dumpAllTables(t.database)).toBe(before);
    // Well-formed multi-byte UTF-8 (and a leading BOM) is fine.
    const ok = await raw('POST', '/api/secrets', Buffer.from('\ufeff{"name":"naïve 🔑","value":"日本語"}', 'utf8'), 'application/json', user);
    expect(ok.statusCode, ok.body).toBe(201);
    expect(json<Secret>(ok)).toMatchObject({ name: 'naïve 🔑', value: '日本語' });
    expect((await api(t.app, user).delete(`/api/secrets/${json<Secret>(ok).id}`)).statusCode).toBe(200);
  });

  it('refuses __proto__ and constructor.prototype poisoning with 400', async () => {
    const before = await dumpAllTables(t.database);
    for (const e of endpoints()) {
      for (const poison of ['"__proto__":{"isAdmin":true}', '"constructor":{"prototype":{"isAdmin":true}}']) {
        const body = `{${poison},${JSON.stringify(e.body).slice(1)}`;
        expectError(await raw('POST', e.url, body, 'application/json', e.auth), 400, 'VALIDATION_FAILED');
      }
    }
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(await dumpAllTables(t.database)).toBe(before);
  });

  it('refuses unknown fields with 400 and a detail naming them', async () => {
    const before = await dumpAllTables(t.database);
    for (const e of endpoints()) {
      const res = seen(await api(t.app, e.auth).post(e.url, { ...e.body, isAdmin: true }));
      const err = expectError(res, 400, 'VALIDATION_FAILED');
      expect(err.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'body', message: expect.stringContaining('isAdmin') })]));
    }
    expect(await dumpAllTables(t.database)).toBe(before);
  });

  it('with duplicate keys, validation and the handler see the same (last) value', async () => {
    const res = await raw('POST', '/api/secrets', '{"name":"first","name":"second","value":"v"}', 'application/json', user);
    expect(res.statusCode, res.body).toBe(201);
    const s = json<Secret>(res);
    expect(s.name).toBe('second');
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${s.id}`)).name).toBe('second');
    // …and a too-long duplicate cannot hide behind a short one.
    const long = await raw('POST', '/api/secrets', `{"name":"short","name":"${'n'.repeat(201)}","value":"v"}`, 'application/json', user);
    expectError(long, 400, 'VALIDATION_FAILED');
    expect(await countRows(t.database, 'secrets')).toBe(1);
  });

  it('logs each refusal as a security event under the same request id, without the values', async () => {
    const res = seen(await api(t.app).post('/api/auth/register', { email: 'x@example.test', password: 'tiny-secret', role: 'admin' }));
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    const events = t.logs.entries().filter((e) => e.reqId === err.requestId && e.securityEvent === 'input_rejected');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ code: 'VALIDATION_FAILED', fields: expect.arrayContaining(['body.password', 'body']) });
    expect(JSON.stringify(events)).not.toContain('tiny-secret');
    for (const [ct, status] of [
      ['text/plain', 415],
      ['application/json', 400],
    ] as const) {
      const r = await raw('POST', '/api/auth/login', '{"broken', ct);
      const id = expectError(r, status).requestId;
      expect(t.logs.entries().some((e) => e.reqId === id && e.securityEvent === 'input_rejected')).toBe(true);
    }
  });

  it('puts a fresh request id in every error body, matching the request log', async () => {
    const ids = errorBodies.map((b) => (JSON.parse(b) as { error: { requestId: string } }).error.requestId);
    expect(ids.length).toBeGreaterThan(100);
    expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const logged = new Set(t.logs.entries().map((e) => e.reqId));
    expect(ids.filter((id) => !logged.has(id))).toEqual([]);
  });

  it('never puts a stack frame, SQL, a file path or an exception name in an error body', async () => {
    expect(errorBodies.length).toBeGreaterThan(100);
    for (const body of errorBodies) {
      const parsed = JSON.parse(body) as { error: Record<string, unknown> };
      expect(Object.keys(parsed.error).every((k) => ['code', 'message', 'requestId', 'details'].includes(k))).toBe(true);
      expect(body).not.toMatch(/\bat [\w.<>]+ \(|\/work\/|node_modules|\.ts:\d+|\.js:\d+|file:\/\//);
      expect(body).not.toMatch(/\b(select|insert|update|delete) .*\b(from|into|set)\b|pg_|drizzle|relation "|syntax error at/i);
      expect(body).not.toMatch(/\b[A-Z]\w*Error\b|FST_ERR|Unexpected token/);
    }
  });
});
