import { AppError } from '@keyturn/shared';
import type { KdfParams } from '@keyturn/shared/crypto';
import type { RotationHooks } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import type { Database, Db, DbOrTx } from '../../db/client';
import type { Clock } from '../../lib/clock';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthRepo } from '../auth/auth.repo';
import type { AuthContext, AuthService } from '../auth/auth.service';
import type { Metrics } from '../health/metrics';
import type { AmkGuard } from '../setup/amk.guard';
import type { Notify } from '../notifications/notifier';
import type { AmkRepo } from '../setup/amk.repo';
import type { RotationRepo, TokenRow } from './rotation.repo';
import { actorIdsOf, toView } from './rotation.view';

export interface RotationServiceDeps {
  db: Db;
  database: Database;
  repo: RotationRepo;
  authRepo: AuthRepo;
  amkRepo: AmkRepo;
  amkGuard: AmkGuard;
  auth: AuthService;
  audit: AuditService;
  clock: Clock;
  metrics: Metrics;
  hooks: RotationHooks;
  /** Notifications (modules/notifications), written in the state change's transaction. */
  notify: Notify;
  config: {
    kdf: KdfParams;
    instanceId: string;
    TOKEN_TTL_SECONDS: number;
    PENDING_TTL_SECONDS: number;
    TEMP_PASSWORD_MAX_ATTEMPTS: number;
    ROTATION_BATCH_SIZE: number;
    RESTORE_WINDOW_SECONDS: number;
  };
}

export const notFound = () => new AppError('NOT_FOUND', 'No such rotation request.');
/** Other attempts for this rotation hold every evaluation slot (R4, and the password throttle's). */
export const inFlight = () => new AppError('LOST_RACE', 'Another attempt for this rotation is being checked. Try again in a moment.');
export const target = (id: string) => `rotation:${id}`;

/** What the user side, execute and the admin side of the rotation share. */
export function createRotationCommon(deps: RotationServiceDeps) {
  const { db, repo, audit, clock, config } = deps;
  const max = config.TEMP_PASSWORD_MAX_ATTEMPTS;

  async function dbNow(h: DbOrTx = db): Promise<Date> {
    const [r] = await deps.database.rows<{ now: string | Date }>(sql`select ${clock.now()} as now`, h);
    return new Date(r!.now);
  }
  const pendingOverdue = (t: TokenRow, now: Date) => t.status === 'pending' && t.createdAt.getTime() + config.PENDING_TTL_SECONDS * 1000 <= now.getTime();
  const approvedOverdue = (t: TokenRow, now: Date) => t.status === 'approved' && !!t.expiresAt && t.expiresAt.getTime() <= now.getTime();

  async function view(t: TokenRow, h: DbOrTx = db) {
    const emails = await repo.emailsOf(h, [t.userId, ...actorIdsOf(t)]);
    return toView(t, emails.get(t.userId) ?? '', emails, max);
  }

  async function expireToken(ctx: RequestCtx, t: TokenRow, note: string): Promise<boolean> {
    return db.transaction(async (tx) => {
      const moved = await repo.transition(tx, t.id, [t.status], { status: 'expired', decidedAt: sql`${clock.now()}`, decisionNote: note, tempHash: null });
      if (moved) await audit.record(tx, ctx, { action: 'rotation.expired', outcome: 'success', target: target(t.id), details: { from: t.status, note } });
      return !!moved;
    });
  }

  /** An overdue token is refused (410) even before cleanup runs, and expired on the spot. */
  async function expireIfOverdue(ctx: RequestCtx, t: TokenRow): Promise<void> {
    const now = await dbNow();
    if (!pendingOverdue(t, now) && !approvedOverdue(t, now)) return;
    await expireToken(ctx, t, 'overdue when used');
    throw new AppError('TOKEN_EXPIRED', 'This rotation request has expired. Ask for a new one.');
  }

  function stateError(t: Pick<TokenRow, 'status'>, action: string): AppError {
    if (t.status === 'expired') return new AppError('TOKEN_EXPIRED', 'This rotation request has expired. Ask for a new one.');
    if (t.status === 'revoked') return new AppError('TOKEN_REVOKED', 'This rotation request was revoked after too many wrong temporary passwords. Ask for a new one.');
    if (t.status === 'in_progress') return new AppError('LOST_RACE', 'This rotation is already running.');
    return new AppError('INVALID_STATE', `A rotation request that is ${t.status.replace('_', ' ')} cannot be ${action}.`, { status: t.status });
  }

  /** A refusal because of the token's state: audited as denied (RELIABILITY B1, G1), then thrown. */
  async function refuseState(ctx: RequestCtx, t: Pick<TokenRow, 'id' | 'status'>, action: string, verb: string): Promise<never> {
    await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'state', status: t.status } });
    throw stateError(t, verb);
  }

  /** The owner's token, or 404 (also for another user's token), with the denial audited. */
  async function loadOwned(ctx: RequestCtx, a: AuthContext, tokenId: string, action: string): Promise<TokenRow> {
    const t = await repo.get(db, tokenId);
    if (!t || t.userId !== a.userId) {
      await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(tokenId), details: { reason: t ? 'not_owner' : 'not_found' } });
      throw notFound();
    }
    return t;
  }

  async function loadAny(tokenId: string): Promise<TokenRow> {
    const t = await repo.get(db, tokenId);
    if (!t) throw notFound();
    return t;
  }

  return { max, dbNow, view, expireToken, expireIfOverdue, stateError, refuseState, loadOwned, loadAny };
}
export type RotationCommon = ReturnType<typeof createRotationCommon>;
