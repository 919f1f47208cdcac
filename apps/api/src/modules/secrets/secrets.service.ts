import { randomUUID } from 'node:crypto';
import { AppError, type CreateSecretBody, type Secret, type SecretMeta, type UpdateSecretBody } from '@keyturn/shared';
import { aad, openText, sealText, wipe } from '@keyturn/shared/crypto';
import type { Db, DbOrTx } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthContext, AuthService } from '../auth/auth.service';
import type { SecretRow, SecretsRepo } from './secrets.repo';

export interface SecretsServiceDeps {
  db: Db;
  repo: SecretsRepo;
  auth: AuthService;
  audit: AuditService;
  config: { SECRET_VALUE_MAX_BYTES: number };
}

const notFound = () => new AppError('NOT_FOUND', 'No such secret.');
const stale = () =>
  new AppError('KEY_VERSION_STALE', 'Your keys were rotated after this session began. Sign in again to continue.');

export function createSecretsService({ db, repo, auth, audit, config }: SecretsServiceDeps) {
  /** Run fn with the session's DEK, wiping it afterwards whatever happens. */
  async function withDek<T>(a: AuthContext, fn: (dek: Buffer) => Promise<T> | T): Promise<T> {
    if (a.keyVersion !== a.currentKeyVersion) throw stale();
    const dek = auth.sessionDek(a);
    try {
      return await fn(dek);
    } finally {
      wipe(dek);
    }
  }

  const decryptName = (dek: Buffer, r: SecretRow) => openText(dek, r.nameCt, aad.secretName(r.userId, r.id, r.keyVersion));
  const meta = (dek: Buffer, r: SecretRow): SecretMeta => ({
    id: r.id,
    name: decryptName(dek, r),
    keyVersion: r.keyVersion,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  });
  const full = (dek: Buffer, r: SecretRow): Secret => ({ ...meta(dek, r), value: openText(dek, r.valueCt, aad.secretValue(r.userId, r.id, r.keyVersion)) });

  function checkSize(value: string | undefined) {
    if (value !== undefined && Buffer.byteLength(value, 'utf8') > config.SECRET_VALUE_MAX_BYTES) {
      throw new AppError('PAYLOAD_TOO_LARGE', `A secret value may be at most ${config.SECRET_VALUE_MAX_BYTES} bytes.`, {
        maxBytes: config.SECRET_VALUE_MAX_BYTES,
      });
    }
  }

  /** The guarded write transaction: key row FOR SHARE, then the session's version must be current. */
  async function guardedWrite<T>(a: AuthContext, fn: (tx: DbOrTx) => Promise<T>): Promise<T> {
    return db.transaction(async (tx) => {
      const kv = await repo.currentKeyVersionShared(tx, a.userId);
      if (kv !== a.keyVersion) throw stale();
      return fn(tx);
    });
  }

  return {
    list: (a: AuthContext) =>
      withDek(a, async (dek) => {
        const rows = await repo.listForUser(db, a.userId);
        // A rotation that committed after this session was resolved has rewritten the rows under
        // the next key version: the session is stale (409), the rows are not corrupt (500).
        if (rows.some((r) => r.keyVersion !== a.keyVersion)) throw stale();
        return rows.map((r) => meta(dek, r));
      }),

    /** `prefetched`: the row the session lookup already read (see the auth plugin), if any. */
    get: (a: AuthContext, id: string, prefetched?: SecretRow | null) =>
      withDek(a, async (dek) => {
        const r = prefetched !== undefined ? prefetched : await repo.get(db, a.userId, id);
        if (!r) throw notFound();
        if (r.keyVersion !== a.keyVersion) throw stale();
        return full(dek, r);
      }),

    create: (ctx: RequestCtx, a: AuthContext, body: CreateSecretBody) => {
      checkSize(body.value);
      return withDek(a, async (dek) => {
        const id = randomUUID();
        const kv = a.keyVersion;
        // AES runs before the transaction; the guard re-checks the version under the lock.
        const nameCt = sealText(dek, body.name, aad.secretName(a.userId, id, kv));
        const valueCt = sealText(dek, body.value, aad.secretValue(a.userId, id, kv));
        const row = await guardedWrite(a, async (tx) => {
          const row = await repo.insert(tx, { id, userId: a.userId, keyVersion: kv, nameCt, valueCt });
          await audit.record(tx, ctx, { action: 'secret.created', outcome: 'success', target: `secret:${id}`, details: { keyVersion: kv } });
          return row;
        });
        return { ...meta(dek, row), value: body.value };
      });
    },

    update: (ctx: RequestCtx, a: AuthContext, id: string, body: UpdateSecretBody) => {
      checkSize(body.value);
      return withDek(a, async (dek) => {
        const kv = a.keyVersion;
        const set: Partial<Pick<SecretRow, 'nameCt' | 'valueCt'>> = {};
        if (body.name !== undefined) set.nameCt = sealText(dek, body.name, aad.secretName(a.userId, id, kv));
        if (body.value !== undefined) set.valueCt = sealText(dek, body.value, aad.secretValue(a.userId, id, kv));
        const row = await guardedWrite(a, async (tx) => {
          const row = await repo.update(tx, a.userId, id, set);
          if (!row) throw notFound();
          await audit.record(tx, ctx, {
            action: 'secret.updated',
            outcome: 'success',
            target: `secret:${id}`,
            details: { keyVersion: kv, changed: Object.keys(body).sort().join(',') },
          });
          return row;
        });
        return full(dek, row);
      });
    },

    remove: (ctx: RequestCtx, a: AuthContext, id: string) =>
      guardedWrite(a, async (tx) => {
        if (!(await repo.delete(tx, a.userId, id))) throw notFound();
        await audit.record(tx, ctx, { action: 'secret.deleted', outcome: 'success', target: `secret:${id}` });
      }),
  };
}
export type SecretsService = ReturnType<typeof createSecretsService>;
