import { randomUUID } from 'node:crypto';
import { AppError, type RequestRotationBody, type RotationToken } from '@keyturn/shared';
import { fingerprint } from '@keyturn/shared/crypto';
import type { RotationHooks } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import { isUniqueViolation } from '../../db/client';
import { messages } from '../notifications/messages';
import type { RequestCtx } from '../../lib/context';
import type { AuthContext } from '../auth/auth.service';
import { createRotationAdminService } from './rotation.admin.service';
import { createRotationCommon, type RotationServiceDeps, target } from './rotation.common';
import { createRotationCommit } from './rotation.commit';
import { createExecute } from './rotation.execute';
import type { TokenRow } from './rotation.repo';

export type { RotationHooks, RotationServiceDeps };

/**
 * The token-based rotation (DESIGN §3, README): the user side here (request, list, cancel),
 * execute in rotation.execute.ts, the admin side in rotation.admin.service.ts, what they share in
 * rotation.common.ts. One service object for the routes and maintenance.
 */
export function createRotationService(deps: RotationServiceDeps) {
  const { db, repo, audit, clock } = deps;
  const common = createRotationCommon(deps);
  const commit = createRotationCommit(deps);

  return {
    async request(ctx: RequestCtx, a: AuthContext, body: RequestRotationBody) {
      try {
        return await db.transaction(async (tx) => {
          const keys = await deps.authRepo.findUserWithKeys(tx, a.userId);
          if (!keys) throw new AppError('UNAUTHENTICATED', 'Sign in again.');
          const t = await repo.insertToken(tx, {
            id: randomUUID(),
            userId: a.userId,
            status: 'pending',
            reason: body.reason,
            fromKeyVersion: keys.keys.keyVersion,
            createdAt: sql`${clock.now()}` as unknown as Date,
          });
          await deps.notify(tx, messages.rotationRequested(t.id, a.email));
          await audit.record(tx, ctx, { action: 'rotation.requested', outcome: 'success', target: target(t.id), details: { fingerprint: fingerprint(t.id) } });
          return common.view(t, tx);
        });
      } catch (e) {
        if (isUniqueViolation(e)) {
          throw new AppError('OPEN_REQUEST_EXISTS', 'You already have an open rotation request. Cancel it or finish it first.');
        }
        throw e;
      }
    },

    async listMine(a: AuthContext) {
      const { rows, total } = await repo.list(db, { userId: a.userId, limit: 100, offset: 0 });
      const items = await Promise.all(rows.map((r) => common.view(r.token)));
      return { items, total };
    },

    /** The owner cancels a pending or approved request. The audit's `from` is the state the row was in when it moved. */
    async cancel(ctx: RequestCtx, a: AuthContext, tokenId: string) {
      const action = 'rotation.cancelled';
      const t = await common.loadOwned(ctx, a, tokenId, action);
      if (t.status !== 'pending' && t.status !== 'approved') await common.refuseState(ctx, t, action, 'cancelled');
      const moved = await db.transaction(async (tx): Promise<{ refused: TokenRow } | { view: RotationToken }> => {
        const locked = await repo.get(tx, t.id, 'update');
        if (!locked || (locked.status !== 'pending' && locked.status !== 'approved')) return { refused: locked ?? t };
        const m = await repo.transition(tx, t.id, [locked.status], { status: 'cancelled', decidedAt: sql`${clock.now()}`, decidedBy: a.userId, tempHash: null });
        if (!m) throw new AppError('LOST_RACE', 'This request changed state meanwhile. Reload and try again.');
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { from: locked.status } });
        return { view: await common.view(m, tx) };
      });
      if ('refused' in moved) return common.refuseState(ctx, moved.refused, action, 'cancelled');
      return moved.view;
    },

    execute: createExecute(deps, common, commit),
    ...createRotationAdminService(deps, common),

    /** For maintenance: expire one token (CAS; false if someone else already moved it). */
    expireToken: common.expireToken,
    dbNow: common.dbNow,
    /** For account recovery (modules/recovery): the same rotation transaction and settlement. */
    commit,
  };
}
export type RotationService = ReturnType<typeof createRotationService>;
