/**
 * Secrets, refused input (issue 2 items 8–9; RELIABILITY A2, A4, A7): name and value bounds,
 * strict bodies, wrong types, bad ids, the configured value limit (413 PAYLOAD_TOO_LARGE, counted
 * in UTF-8 bytes), missing authentication. Every refusal leaves the table as it was.
 */
import type { Secret } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { api, createSecret, describeBoth, dumpAllTables, expectError, json, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';

describeBoth('secrets refused input', (backend) => {
  const t = useTestApp(backend);
  let user: TestUser;
  let existing: Secret;

  it('sets up a user with one secret', async () => {
    await setupAdmin(t.app);
    user = await registerUser(t.app);
    existing = await createSecret(t.app, user, { name: 'existing', value: 'unchanged' });
  });

  /** A 400 with a detail naming `field`, and not one byte changed in the secrets table. */
  async function refused(send: () => ReturnType<ReturnType<typeof api>['post']>, field: string) {
    const before = await dumpAllTables(t.database);
    const err = expectError(await send(), 400, 'VALIDATION_FAILED');
    expect(err.details, JSON.stringify(err)).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    const after = await dumpAllTables(t.database);
    expect(after).toBe(before);
    return err;
  }
  const post = (body: unknown) => () => api(t.app, user).post('/api/secrets', body);
  const put = (body: unknown, id = existing.id) => () => api(t.app, user).put(`/api/secrets/${id}`, body);

  it('accepts a name of 200 characters and refuses 201', async () => {
    await createSecret(t.app, user, { name: 'n'.repeat(199) + '🔑', value: 'v' });
    await refused(post({ name: 'n'.repeat(201), value: 'v' }), 'body.name');
    await refused(put({ name: 'n'.repeat(201) }), 'body.name');
  });

  it('refuses empty, blank and NUL-bearing names, and values with lone surrogates', async () => {
    await refused(post({ name: '', value: 'v' }), 'body.name');
    await refused(post({ name: '   ', value: 'v' }), 'body.name');
    await refused(post({ name: 'a\u0000b', value: 'v' }), 'body.name');
    await refused(post({ name: 'ok', value: 'bad \udc00 half' }), 'body.value');
  });

  it('refuses wrong types, missing fields and unknown fields', async () => {
    await refused(post({ name: 5, value: 'v' }), 'body.name');
    await refused(post({ name: 'n', value: { nested: true } }), 'body.value');
    await refused(post({ name: 'n', value: ['a'] }), 'body.value');
    await refused(post({ name: 'n', value: null }), 'body.value');
    await refused(post({ name: 'n' }), 'body.value');
    await refused(post({ value: 'v' }), 'body.name');
    for (const extra of [{ userId: user.id }, { keyVersion: 2 }, { id: existing.id }]) {
      const err = await refused(post({ name: 'n', value: 'v', ...extra }), 'body');
      expect(JSON.stringify(err.details)).toContain(Object.keys(extra)[0]!);
    }
    await refused(put({}), 'body');
    await refused(put({ keyVersion: 9 }), 'body');
    await refused(put({ name: 'n', userId: user.id }), 'body');
  });

  it('refuses ids that are not UUIDs with 400, and unknown UUIDs with 404', async () => {
    for (const bad of ['1', 'not-a-uuid', "' or '1'='1", `${existing.id}x`]) {
      const res = await api(t.app, user).get(`/api/secrets/${encodeURIComponent(bad)}`);
      const err = expectError(res, 400, 'VALIDATION_FAILED');
      expect(err.details).toEqual([expect.objectContaining({ field: 'params.id' })]);
    }
    expectError(await api(t.app, user).get('/api/secrets/00000000-0000-4000-8000-000000000000'), 404, 'NOT_FOUND');
    expectError(await api(t.app, user).put('/api/secrets/00000000-0000-4000-8000-000000000000', { value: 'x' }), 404, 'NOT_FOUND');
  });

  it('stores SQL and markup in names and values as inert data', async () => {
    const name = `Robert'); DROP TABLE secrets;-- <img src=x onerror=alert(1)>`;
    const value = "$1 ' OR 1=1 -- \r\n\u001b[31mred";
    const s = await createSecret(t.app, user, { name, value });
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${s.id}`))).toMatchObject({ name, value });
  });

  it('needs a session', async () => {
    expectError(await api(t.app).get('/api/secrets'), 401, 'UNAUTHENTICATED');
    expectError(await api(t.app).post('/api/secrets', { name: 'n', value: 'v' }), 401, 'UNAUTHENTICATED');
    expectError(await api(t.app).get(`/api/secrets/${existing.id}`), 401, 'UNAUTHENTICATED');
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${existing.id}`)).value).toBe('unchanged');
  });
});

describeBoth('secret value limit', (backend) => {
  const MAX = 64;
  const t = useTestApp(backend, { env: { SECRET_VALUE_MAX_BYTES: String(MAX) } });
  let user: TestUser;
  let s: Secret;

  it(`accepts ${MAX} bytes`, async () => {
    await setupAdmin(t.app);
    user = await registerUser(t.app);
    s = await createSecret(t.app, user, { name: 'fits', value: 'v'.repeat(MAX) });
  });

  it(`refuses ${MAX + 1} bytes with 413 PAYLOAD_TOO_LARGE, counted in UTF-8 bytes, and changes nothing`, async () => {
    const before = await dumpAllTables(t.database);
    const tooBig = ['v'.repeat(MAX + 1), '€'.repeat(22) /* 22 characters, 66 bytes */];
    for (const value of tooBig) {
      const err = expectError(await api(t.app, user).post('/api/secrets', { name: 'too big', value }), 413, 'PAYLOAD_TOO_LARGE');
      expect(err.details).toEqual({ maxBytes: MAX });
      expectError(await api(t.app, user).put(`/api/secrets/${s.id}`, { value }), 413, 'PAYLOAD_TOO_LARGE');
    }
    expect(await dumpAllTables(t.database)).toBe(before);
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${s.id}`)).value).toBe('v'.repeat(MAX));
  });
});
