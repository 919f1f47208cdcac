/**
 * Secrets security (issue 2 item 8; RELIABILITY B2, D2, A8): another user's id answers exactly
 * like a missing one; rows hold no plaintext; a ciphertext moved to another row (same user,
 * another user, name↔value) fails closed with a generic 500 whose body carries no plaintext and
 * whose request id matches the server's error log line.
 */
import { randomUUID } from 'node:crypto';
import type { Secret } from '@keyturn/shared';
import { expect, it } from 'vitest';
import {
  api,
  canary,
  createSecret,
  describeBoth,
  dumpAllTables,
  expectError,
  findCanaries,
  json,
  queryRows,
  registerUser,
  setupAdmin,
  type TestUser,
  useTestApp,
  withoutRequestId,
} from './harness';

describeBoth('secrets security', (backend) => {
  const t = useTestApp(backend);
  let alice: TestUser;
  let bob: TestUser;
  const plain = { a1: { name: canary('A1name'), value: canary('A1value') }, a2: { name: canary('A2name'), value: canary('A2value') }, b1: { name: canary('B1name'), value: canary('B1value') } };
  let a1: Secret;
  let a2: Secret;
  let b1: Secret;

  it('sets up two users with secrets', async () => {
    await setupAdmin(t.app);
    alice = await registerUser(t.app);
    bob = await registerUser(t.app);
    a1 = await createSecret(t.app, alice, plain.a1);
    a2 = await createSecret(t.app, alice, plain.a2);
    b1 = await createSecret(t.app, bob, plain.b1);
  });

  it("answers another user's id and a random id with the same 404, byte for byte apart from the request id", async () => {
    const before = await dumpAllTables(t.database);
    const missing = randomUUID();
    const calls = [
      (id: string) => api(t.app, bob).get(`/api/secrets/${id}`),
      (id: string) => api(t.app, bob).put(`/api/secrets/${id}`, { value: 'overwrite' }),
      (id: string) => api(t.app, bob).put(`/api/secrets/${id}`, { name: 'rename' }),
      (id: string) => api(t.app, bob).delete(`/api/secrets/${id}`),
    ];
    for (const call of calls) {
      const foreign = await call(a1.id);
      const random = await call(missing);
      expectError(foreign, 404, 'NOT_FOUND');
      expectError(random, 404, 'NOT_FOUND');
      expect(withoutRequestId(foreign)).toBe(withoutRequestId(random));
      expect(Object.keys(foreign.headers).sort()).toEqual(Object.keys(random.headers).sort());
    }
    // Nothing of Alice's changed, and Bob's failed writes left no trace in the data.
    expect(await dumpAllTables(t.database)).toBe(before);
    expect(json<Secret>(await api(t.app, alice).get(`/api/secrets/${a1.id}`))).toMatchObject(plain.a1);
  });

  it('keeps no plaintext name or value in any row', async () => {
    const dump = await dumpAllTables(t.database);
    const all = Object.values(plain).flatMap((p) => [p.name, p.value]);
    expect(findCanaries(all, { dump })).toEqual([]);
    // The grep can see: the same dump with one value planted in it is caught.
    expect(findCanaries(all, { dump: dump + Buffer.from(plain.a1.value).toString('hex') })).toHaveLength(1);
  });

  /** Copy one column between rows, run fn, put it back. */
  async function withSwapped(column: 'name_ct' | 'value_ct', fromId: string, toId: string, fn: () => Promise<void>, fromColumn = column) {
    const [orig] = await queryRows<{ v: string }>(t.database, `select encode(${column}, 'hex') as v from secrets where id = '${toId}'`);
    await queryRows(t.database, `update secrets set ${column} = (select ${fromColumn} from secrets where id = '${fromId}') where id = '${toId}'`);
    try {
      await fn();
    } finally {
      await queryRows(t.database, `update secrets set ${column} = decode('${orig!.v}', 'hex') where id = '${toId}'`);
    }
  }

  /** A generic 500: error schema, no plaintext, and the server's error log carries its request id. */
  function expectGeneric500(res: Awaited<ReturnType<ReturnType<typeof api>['get']>>) {
    const err = expectError(res, 500, 'INTERNAL');
    expect(err.message).toBe('Something went wrong on our side.');
    expect(err.details).toBeUndefined();
    const all = Object.values(plain).flatMap((p) => [p.name, p.value]);
    expect(findCanaries(all, { body: res.body })).toEqual([]);
    expect(res.body).not.toMatch(/integrity|ciphertext|\baes\b|gcm|stack|\.ts:\d+/i);
    expect(res.body).not.toMatch(/[A-Za-z]*Error\b/);
    const logged = t.logs.entries().filter((e) => e.reqId === err.requestId && Number(e.level) >= 50);
    expect(logged.length).toBeGreaterThanOrEqual(1);
    return err;
  }

  it("a value blob copied into another of the user's rows fails to open (AAD binds the secret id)", async () => {
    await withSwapped('value_ct', a1.id, a2.id, async () => {
      expectGeneric500(await api(t.app, alice).get(`/api/secrets/${a2.id}`));
      // The list only opens names: still fine.
      expect((await api(t.app, alice).get('/api/secrets')).statusCode).toBe(200);
    });
    expect(json<Secret>(await api(t.app, alice).get(`/api/secrets/${a2.id}`))).toMatchObject(plain.a2);
  });

  it("a blob copied from another user's row fails to open (AAD binds the user)", async () => {
    await withSwapped('value_ct', b1.id, a1.id, async () => {
      expectGeneric500(await api(t.app, alice).get(`/api/secrets/${a1.id}`));
    });
    await withSwapped('name_ct', b1.id, a1.id, async () => {
      expectGeneric500(await api(t.app, alice).get('/api/secrets'));
    });
  });

  it('a name blob moved into the value column of its own row fails to open (AAD binds the purpose)', async () => {
    await withSwapped(
      'value_ct',
      a1.id,
      a1.id,
      async () => {
        expectGeneric500(await api(t.app, alice).get(`/api/secrets/${a1.id}`));
      },
      'name_ct',
    );
  });

  it('a flipped byte in a stored value fails closed', async () => {
    const [orig] = await queryRows<{ v: string }>(t.database, `select encode(value_ct, 'hex') as v from secrets where id = '${a2.id}'`);
    const flipped = Buffer.from(orig!.v, 'hex');
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0x80;
    await queryRows(t.database, `update secrets set value_ct = decode('${flipped.toString('hex')}', 'hex') where id = '${a2.id}'`);
    expectGeneric500(await api(t.app, alice).get(`/api/secrets/${a2.id}`));
    await queryRows(t.database, `update secrets set value_ct = decode('${orig!.v}', 'hex') where id = '${a2.id}'`);
    expect(json<Secret>(await api(t.app, alice).get(`/api/secrets/${a2.id}`))).toMatchObject(plain.a2);
  });

  it('the process keeps serving after those failures', async () => {
    expect((await api(t.app).get('/healthz')).statusCode).toBe(200);
    expect(json<Secret>(await api(t.app, bob).get(`/api/secrets/${b1.id}`))).toMatchObject(plain.b1);
  });
});
