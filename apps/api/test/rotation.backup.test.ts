/**
 * The rotation's backup (R7) and restore (D7, R13) at the row level: the old secret rows are
 * packed by the database, one chunk per re-encryption batch (rotation_backup_chunks, format in
 * packages/shared/src/rotation/backup-chunk.ts), and restore puts them back byte for byte,
 * timestamps to the microsecond; a user without secrets, a backup written before migration 0002
 * (one rotation_backups row per secret), and a damaged, incomplete or purged backup.
 */
import { packBackupChunk, type SecretBackupRow, unpackBackupChunk } from '@keyturn/shared/rotation';
import { beforeAll, expect, it } from 'vitest';
import { countRows, createSecret, describeBoth, expectError, json, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import { dump, dumpToken, dumpUserKeys, keyVersion, loginAndReadVault, restoreRes, rotate, runSql, tokenRow } from './rotation.helpers';

const BATCH = 3;

describeBoth('rotation backup chunks and restore', (backend) => {
  // Batches of 3: ten secrets take batches of 3, 3, 3 and 1, so the backup spans four chunks.
  const t = useTestApp(backend, { env: { ROTATION_BATCH_SIZE: String(BATCH) } });
  let admin: TestUser;
  beforeAll(async () => {
    admin = await setupAdmin(t.app);
  });

  /** The user's secret rows exactly: bytes as hex, timestamps as text and as epoch microseconds. */
  const exactRows = (userId: string) =>
    dump(
      t.database,
      `select id, user_id, key_version, encode(name_ct, 'hex') as name_ct, encode(value_ct, 'hex') as value_ct,
              created_at::text as created_at, updated_at::text as updated_at,
              (extract(epoch from created_at) * 1000000)::int8::text as created_us, (extract(epoch from updated_at) * 1000000)::int8::text as updated_us
       from secrets where user_id = '${userId}' order by id`,
    );

  /** A user with `n` secrets; a few get odd timestamps (sub-millisecond, before 1970, far future). */
  async function newUser(n: number) {
    const user = await registerUser(t.app);
    const vault: Record<string, string> = {};
    for (let i = 0; i < n; i++) {
      vault[`s${i}`] = `v${i}-${strongPassword()}`;
      await createSecret(t.app, user, { name: `s${i}`, value: vault[`s${i}`]! });
    }
    const odd = [
      `created_at = '2001-02-03 04:05:06.789012+00', updated_at = '2024-06-07 08:09:10.000001+00'`,
      `created_at = '1969-12-31 23:59:59.999999+00', updated_at = '1900-01-01 00:00:00.5+00'`,
      `created_at = '2999-12-31 23:59:59.999999+00'`,
    ];
    const ids = (await queryRows<{ id: string }>(t.database, `select id from secrets where user_id = '${user.id}' order by id`)).map((r) => r.id);
    for (const [i, set] of odd.entries()) if (ids[i * 3]) await runSql(t.database, `update secrets set ${set} where id = '${ids[i * 3]}'`);
    return { user, vault };
  }

  const chunksOf = (tokenId: string) =>
    queryRows<{ chunk: number; row_count: number; d: string }>(
      t.database,
      `select chunk, row_count, encode(data, 'base64') as d from rotation_backup_chunks where token_id = '${tokenId}' order by chunk`,
    );

  it('a rotation over several batches stores one chunk per batch holding exactly the old rows; restore brings them back byte for byte', async () => {
    const { user, vault } = await newUser(10);
    const before = await exactRows(user.id);
    const keysBefore = await dumpUserKeys(t.database, user.id);
    const r = await rotate(t, admin, user, { newPassword: strongPassword() });
    expect(r.result).toMatchObject({ secretsReencrypted: 10 });
    expect(await exactRows(user.id)).not.toBe(before);

    // One chunk per batch, in batch order, 10 rows in all; only the key row in rotation_backups.
    const chunks = await chunksOf(r.token.id);
    expect(chunks.map((c) => [c.chunk, c.row_count])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
      [3, 1],
    ]);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${r.token.id}'`)).toBe(1);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${r.token.id}' and secret_id is null and key_snapshot is not null`)).toBe(1);
    // The chunks unpack to exactly the old rows, in id order; the database packed them byte for
    // byte as the reference encoder (packBackupChunk) does.
    const old = JSON.parse(before) as { id: string; key_version: number; name_ct: string; value_ct: string; created_us: string; updated_us: string }[];
    const unpacked = chunks.flatMap((c) => unpackBackupChunk(Buffer.from(c.d, 'base64'), c.row_count));
    expect(unpacked.map((x) => [x.id, x.keyVersion, x.nameCt.toString('hex'), x.valueCt.toString('hex'), String(x.createdAtUs), String(x.updatedAtUs)])).toEqual(
      old.map((x) => [x.id, x.key_version, x.name_ct, x.value_ct, x.created_us, x.updated_us]),
    );
    const oldRows: SecretBackupRow[] = old.map((x) => ({
      id: x.id,
      keyVersion: x.key_version,
      nameCt: Buffer.from(x.name_ct, 'hex'),
      valueCt: Buffer.from(x.value_ct, 'hex'),
      createdAtUs: BigInt(x.created_us),
      updatedAtUs: BigInt(x.updated_us),
    }));
    for (const c of chunks) {
      expect(Buffer.from(c.d, 'base64').equals(packBackupChunk(oldRows.slice(c.chunk * BATCH, c.chunk * BATCH + BATCH))), `chunk ${c.chunk}`).toBe(true);
    }
    // The data column is stored uncompressed (migration 0002).
    const [storage] = await queryRows<{ s: string }>(
      t.database,
      `select attstorage as s from pg_attribute where attrelid = 'rotation_backup_chunks'::regclass and attname = 'data'`,
    );
    expect(storage!.s).toBe('e');

    const res = await restoreRes(t, admin, r.token.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ status: 'rolled_back', secretsRestored: 10 });
    expect(await exactRows(user.id)).toBe(before);
    const strip = (d: string) => (JSON.parse(d) as Record<string, unknown>[]).map(({ updated_at: _, ...rest }) => rest);
    expect(strip(await dumpUserKeys(t.database, user.id))).toEqual(strip(keysBefore));
    expect((await loginAndReadVault(t.app, user)).vault).toEqual(vault);
  });

  it('timestamps far outside what the API shows (4000 BC, the year 200000) still come back exactly', async () => {
    const { user } = await newUser(2);
    await runSql(t.database, `update secrets set created_at = '4000-01-01 00:00:00.000007+00 BC', updated_at = '200000-06-07 08:09:10.123457+00' where user_id = '${user.id}'`);
    const before = await exactRows(user.id);
    const r = await rotate(t, admin, user);
    const res = await restoreRes(t, admin, r.token.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(await exactRows(user.id)).toBe(before);
  });

  it('a user with no secrets: the rotation stores no chunk, and restore puts the key row back', async () => {
    const { user } = await newUser(0);
    const keysBefore = await dumpUserKeys(t.database, user.id);
    const r = await rotate(t, admin, user, { newPassword: strongPassword() });
    expect(r.result).toMatchObject({ keyVersion: 2, secretsReencrypted: 0 });
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${r.token.id}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${r.token.id}'`)).toBe(1);

    const res = await restoreRes(t, admin, r.token.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ status: 'rolled_back', secretsRestored: 0 });
    expect(await keyVersion(t.database, user.id)).toBe(1);
    const strip = (d: string) => (JSON.parse(d) as Record<string, unknown>[]).map(({ updated_at: _, ...rest }) => rest);
    expect(strip(await dumpUserKeys(t.database, user.id))).toEqual(strip(keysBefore));
    expect((await loginAndReadVault(t.app, user)).vault).toEqual({});
  });

  it('a backup written before migration 0002 (one rotation_backups row per secret, no chunks) still restores exactly', async () => {
    const { user, vault } = await newUser(4);
    const before = await exactRows(user.id);
    const table = `kt_legacy_${user.id.replaceAll('-', '')}`;
    await runSql(t.database, `create table ${table} as select * from secrets where user_id = '${user.id}'`);
    const r = await rotate(t, admin, user);
    // Rewrite this rotation's backup the way earlier versions stored it.
    await runSql(t.database, `delete from rotation_backup_chunks where token_id = '${r.token.id}'`);
    await runSql(
      t.database,
      `insert into rotation_backups (token_id, user_id, secret_id, key_version, name_ct, value_ct, secret_created_at, secret_updated_at)
       select '${r.token.id}', user_id, id, key_version, name_ct, value_ct, created_at, updated_at from ${table}`,
    );
    await runSql(t.database, `drop table ${table}`);

    const res = await restoreRes(t, admin, r.token.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ status: 'rolled_back', secretsRestored: 4 });
    expect(await exactRows(user.id)).toBe(before);
    expect((await loginAndReadVault(t.app, user)).vault).toEqual(vault);
  });

  it.each([
    ['a truncated chunk', (tok: string) => `update rotation_backup_chunks set data = substring(data from 1 for length(data) - 1) where token_id = '${tok}' and chunk = 1`, /damaged/],
    ['a chunk with a wrong format byte', (tok: string) => `update rotation_backup_chunks set data = set_byte(data, 0, 2) where token_id = '${tok}' and chunk = 0`, /damaged/],
    ['a row count that disagrees', (tok: string) => `update rotation_backup_chunks set row_count = 2 where token_id = '${tok}' and chunk = 0`, /damaged/],
    ['a missing chunk', (tok: string) => `delete from rotation_backup_chunks where token_id = '${tok}' and chunk = 1`, /damaged.*chunk 1 is missing/],
    ['a missing last chunk', (tok: string) => `delete from rotation_backup_chunks where token_id = '${tok}' and chunk = 2`, /incomplete \(6 of 7 secrets\)/],
    ['no key-row snapshot left', (tok: string) => `delete from rotation_backups where token_id = '${tok}'`, /no backup left/],
  ] as const)('restore with %s is refused with 409 INVALID_STATE; nothing changes', async (_what, damage, message) => {
    const { user, vault } = await newUser(7);
    const r = await rotate(t, admin, user);
    await runSql(t.database, damage(r.token.id));
    const before = [await exactRows(user.id), await dumpUserKeys(t.database, user.id), await dumpToken(t.database, r.token.id)];
    const err = expectError(await restoreRes(t, admin, r.token.id), 409, 'INVALID_STATE');
    expect(err.message).toMatch(message);
    expect([await exactRows(user.id), await dumpUserKeys(t.database, user.id), await dumpToken(t.database, r.token.id)]).toEqual(before);
    expect(await tokenRow(t.database, r.token.id)).toMatchObject({ status: 'completed' });
    expect((await loginAndReadVault(t.app, r.user)).vault).toEqual(vault);
  });
});
