/**
 * Secrets CRUD, the happy paths (issue 2 item 8): create → list (no values) → reveal → change
 * name, value or both → delete, with the rows checked at each step (sealed under key version 1,
 * name and value separately, re-sealed on change) and an audit event per write.
 */
import type { Secret, SecretMeta } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { api, bytes, countRows, createSecret, describeBoth, expectError, json, queryRows, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';

interface SecretRow {
  id: string;
  user_id: string;
  key_version: number;
  name_ct: unknown;
  value_ct: unknown;
}

describeBoth('secrets CRUD', (backend) => {
  const t = useTestApp(backend);
  let user: TestUser;
  let created: Secret;
  const row = async (id: string) => (await queryRows<SecretRow>(t.database, `select * from secrets where id = '${id}'`))[0];

  it('creates a secret: 201 with the value, sealed under key version 1', async () => {
    await setupAdmin(t.app);
    user = await registerUser(t.app);
    const res = await api(t.app, user).post('/api/secrets', { name: 'Production DB', value: 'postgres://app:hunter2@db/prod' });
    expect(res.statusCode, res.body).toBe(201);
    created = json<Secret>(res);
    expect(created).toMatchObject({ name: 'Production DB', value: 'postgres://app:hunter2@db/prod', keyVersion: 1 });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(created.createdAt)).not.toBeNaN();

    const r = await row(created.id);
    expect(r).toMatchObject({ user_id: user.id, key_version: 1 });
    const name = bytes(r!.name_ct);
    const value = bytes(r!.value_ct);
    // Versioned blob: format byte 0x01, 12-byte nonce, ciphertext, 16-byte tag.
    expect(name[0]).toBe(1);
    expect(name.length).toBe(1 + 12 + Buffer.byteLength('Production DB') + 16);
    expect(value.length).toBe(1 + 12 + Buffer.byteLength('postgres://app:hunter2@db/prod') + 16);
    expect(name.toString('latin1')).not.toContain('Production');
    expect(value.toString('latin1')).not.toContain('hunter2');
  });

  it('lists names and metadata without values', async () => {
    const second = await createSecret(t.app, user, { name: 'API key 🔑 ünïcödé', value: '' });
    const res = await api(t.app, user).get('/api/secrets');
    expect(res.statusCode).toBe(200);
    const { items } = json<{ items: SecretMeta[] }>(res);
    expect(items.map((i) => i.name)).toEqual(['Production DB', 'API key 🔑 ünïcödé']);
    expect(items.map((i) => i.id)).toEqual([created.id, second.id]);
    for (const i of items) expect(Object.keys(i).sort()).toEqual(['createdAt', 'id', 'keyVersion', 'name', 'updatedAt']);
    expect(res.body).not.toContain('hunter2');
  });

  it('reveals one secret with its value', async () => {
    const res = await api(t.app, user).get(`/api/secrets/${created.id}`);
    expect(res.statusCode).toBe(200);
    expect(json<Secret>(res)).toEqual(created);
  });

  it('changes the value only, re-sealing the value and keeping the name blob', async () => {
    const before = await row(created.id);
    const res = await api(t.app, user).put(`/api/secrets/${created.id}`, { value: 'rotated-by-hand' });
    expect(res.statusCode, res.body).toBe(200);
    expect(json<Secret>(res)).toMatchObject({ id: created.id, name: 'Production DB', value: 'rotated-by-hand' });
    const after = await row(created.id);
    expect(bytes(after!.name_ct).equals(bytes(before!.name_ct))).toBe(true);
    expect(bytes(after!.value_ct).equals(bytes(before!.value_ct))).toBe(false);
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${created.id}`)).value).toBe('rotated-by-hand');
  });

  it('changes the name only, then both', async () => {
    let res = await api(t.app, user).put(`/api/secrets/${created.id}`, { name: 'Prod DB' });
    expect(json<Secret>(res)).toMatchObject({ name: 'Prod DB', value: 'rotated-by-hand' });
    res = await api(t.app, user).put(`/api/secrets/${created.id}`, { name: 'Prod DB (new)', value: 'v3' });
    const s = json<Secret>(res);
    expect(s).toMatchObject({ name: 'Prod DB (new)', value: 'v3', keyVersion: 1 });
    expect(Date.parse(s.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${created.id}`))).toMatchObject({ name: 'Prod DB (new)', value: 'v3' });
  });

  it('stores a value of exactly the configured maximum', async () => {
    const value = 'é'.repeat(t.config.SECRET_VALUE_MAX_BYTES / 2);
    expect(Buffer.byteLength(value)).toBe(t.config.SECRET_VALUE_MAX_BYTES);
    const s = await createSecret(t.app, user, { name: 'max-size', value });
    expect(json<Secret>(await api(t.app, user).get(`/api/secrets/${s.id}`)).value).toBe(value);
  });

  it('deletes a secret: gone from reads, list and table', async () => {
    const res = await api(t.app, user).delete(`/api/secrets/${created.id}`);
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ ok: true });
    expectError(await api(t.app, user).get(`/api/secrets/${created.id}`), 404, 'NOT_FOUND');
    expectError(await api(t.app, user).delete(`/api/secrets/${created.id}`), 404, 'NOT_FOUND');
    const { items } = json<{ items: SecretMeta[] }>(await api(t.app, user).get('/api/secrets'));
    expect(items.map((i) => i.id)).not.toContain(created.id);
    expect(await row(created.id)).toBeUndefined();
  });

  it('wrote one audit event per write, with metadata only, and the chain verifies', async () => {
    const events = await queryRows<{ action: string; target: string; outcome: string; actor_id: string; details: Record<string, unknown> }>(
      t.database,
      `select action, target, outcome, actor_id, details from audit_events where action like 'secret.%' and target = 'secret:${created.id}' order by seq`,
    );
    expect(events.map((e) => e.action)).toEqual(['secret.created', 'secret.updated', 'secret.updated', 'secret.updated', 'secret.deleted']);
    expect(events.every((e) => e.outcome === 'success' && e.actor_id === user.id)).toBe(true);
    expect(events.slice(1, 4).map((e) => e.details.changed)).toEqual(['value', 'name', 'name,value']);
    const text = JSON.stringify(events);
    for (const plain of ['Production', 'hunter2', 'rotated-by-hand', 'Prod DB']) expect(text).not.toContain(plain);
    expect(await countRows(t.database, 'audit_events', `action = 'secret.created'`)).toBe(3);
    const v = await t.app.container.audit.verify();
    expect(v.ok).toBe(true);
    expect(v.checked).toBe(await countRows(t.database, 'audit_events'));
  });
});
