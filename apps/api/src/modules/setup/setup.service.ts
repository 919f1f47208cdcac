import { randomUUID } from 'node:crypto';
import { AppError, type Session, type SetupBody } from '@keyturn/shared';
import {
  constantTimeEqualStrings,
  generateAmk,
  generateSetupCode,
  hashSetupCode,
  type KdfParams,
  newKeyMaterial,
  wipe,
  wrapAmkForAdmin,
} from '@keyturn/shared/crypto';
import { type Db, isUniqueViolation } from '../../db/client';
import { users } from '../../db/schema';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthRepo } from '../auth/auth.repo';
import { type AuthService, toUser } from '../auth/auth.service';
import type { AmkGuard } from './amk.guard';
import type { AmkRepo } from './amk.repo';

const SETUP_CODE_KEY = 'setup_code_sha256';
/** Wrong setup codes allowed per LOGIN_LOCK_SECONDS window (all clients together), then 429. */
export const SETUP_CODE_MAX_FAILURES = 10;

import { messages } from '../notifications/messages';
import type { Notify } from '../notifications/notifier';

export interface SetupServiceDeps {
  db: Db;
  amkRepo: AmkRepo;
  amkGuard: AmkGuard;
  authRepo: AuthRepo;
  auth: AuthService;
  audit: AuditService;
  config: { kdf: KdfParams; SETUP_CODE?: string | undefined };
  /** Notifications (modules/notifications), in the state change's transaction. */
  notify?: Notify;
}

export function createSetupService({ db, amkRepo, amkGuard, authRepo, auth, audit, config, notify }: SetupServiceDeps) {
  /**
   * An existing admin shares the AMK with a new admin account: the existing admin re-authenticates
   * through the admin re-authentication throttle (the same counter as approve, finalize and
   * restore), the AMK private key is unwrapped with their KEK and wrapped under the new admin's.
   * Every refusal is audited as denied.
   */
  async function addAdmin(ctx: RequestCtx, byAdminId: string, adminPassword: string, body: { email: string; password: string }) {
    const action = 'admin.created';
    const deny = async (reason: string, error: AppError): Promise<never> => {
      await audit.recordDetached(ctx, { action, outcome: 'denied', target: `email:${body.email}`, details: { reason, by: byAdminId } });
      throw error;
    };
    const emailTaken = () => new AppError('EMAIL_TAKEN', 'An account with this email already exists.');
    /** Thrown inside the transaction when another request took the email meanwhile. */
    const raced = emailTaken();
    const kek = await auth.reauthenticateAdmin(ctx, byAdminId, adminPassword, action);
    let priv: Buffer | null = null;
    let fresh: Awaited<ReturnType<typeof newKeyMaterial>> | null = null;
    try {
      if (await authRepo.findUserWithKeysByEmail(db, body.email)) return await deny('email_taken', emailTaken());
      // Opened and checked against the stored public key (amk.guard.ts): a mismatch is its own
      // security event, and the new admin's escrow would be sealed to the wrong key.
      let opened: Awaited<ReturnType<AmkGuard['open']>>;
      try {
        opened = await amkGuard.open(ctx, byAdminId, kek, action);
      } catch (e) {
        if (e instanceof AppError) return await deny(e.code === 'AMK_MISMATCH' ? 'amk_mismatch' : 'no_amk_share', e);
        throw e;
      }
      priv = opened.priv;
      const amkRow = opened.amk;
      const newId = randomUUID();
      fresh = await auth.kdfCost(() => newKeyMaterial({ userId: newId, password: body.password, keyVersion: 1, kdf: config.kdf, amkPublic: amkRow.publicKey }));
      const material = fresh;
      const amkPrivate = priv;
      return await db.transaction(async (tx) => {
        if (await authRepo.findUserWithKeysByEmail(tx, body.email)) throw raced;
        const [user] = await tx.insert(users).values({ id: newId, email: body.email, role: 'admin' }).returning();
        await authRepo.insertKeys(tx, newId, material.material);
        await amkRepo.upsertWrap(tx, { adminId: newId, amkId: amkRow.id, keyVersion: 1, wrappedPrivate: wrapAmkForAdmin(material.kek, amkPrivate, newId, amkRow.id) });
        await notify?.(tx, messages.adminCreated(newId, body.email, ctx.actor.email));
        await audit.record(tx, ctx, { action, outcome: 'success', target: `user:${newId}`, details: { by: byAdminId } });
        return toUser(user!, { keyVersion: 1 });
      });
    } catch (e) {
      // Two additions racing for one email: the unique index settles it.
      if (e === raced || isUniqueViolation(e)) return deny('email_taken', emailTaken());
      throw e;
    } finally {
      wipe(kek, priv, fresh?.dek, fresh?.kek);
    }
  }

  const needed = async () => (await authRepo.countAdmins(db)) === 0;

  return {
    needed,
    addAdmin,

    /**
     * At start-up while no admin exists: take SETUP_CODE or make a one-time code, keep only its
     * hash, and return it for the operator's console. Returns null once setup is done.
     */
    async prepareSetupCode(): Promise<{ code: string; generated: boolean } | null> {
      if (!(await needed())) {
        await amkRepo.deleteSetting(db, SETUP_CODE_KEY);
        return null;
      }
      // Each server start issues the code it prints (a restart's replaces the last one's; with
      // several instances, the last one started prints the code that works, or set SETUP_CODE).
      // The CLI never calls this: it must not replace a running server's code.
      const code = config.SETUP_CODE ?? generateSetupCode();
      await amkRepo.putSetting(db, SETUP_CODE_KEY, { hash: hashSetupCode(code) });
      return { code, generated: !config.SETUP_CODE };
    },

    /**
     * Create the first admin and the AMK key pair, its private key wrapped only under that admin's
     * KEK. The setup code is checked through a throttle (README of auth A5): wrong codes are
     * counted across every client and instance, audited, and refused with 429 past the cap.
     */
    async complete(ctx: RequestCtx, body: SetupBody): Promise<Session> {
      if (!(await needed()) || (await amkRepo.get(db))) throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
      const attempt = await auth.reserveAttempt(
        'setup-code',
        { max: SETUP_CODE_MAX_FAILURES, message: 'Too many wrong setup codes. Try again later.' },
        () => audit.recordDetached(ctx, { action: 'setup.admin_created', outcome: 'denied', details: { reason: 'throttled' } }),
      );
      try {
        const stored = await amkRepo.getSetting<{ hash: string }>(db, SETUP_CODE_KEY);
        if (!stored || !constantTimeEqualStrings(hashSetupCode(body.setupCode), stored.hash)) {
          await attempt.failed();
          await audit.recordDetached(ctx, { action: 'setup.admin_created', outcome: 'denied', details: { reason: 'wrong_setup_code' } });
          throw new AppError('FORBIDDEN', 'The setup code is not right. Use the code printed when the server started.');
        }
        await attempt.succeeded();
      } finally {
        await attempt.abandoned();
      }
      return (await createFirstAdmin(ctx, body, true)) as Session;
    },

    /**
     * The CLI's path (an operator with shell access): the same first admin, without a setup code
     * and without opening a session. It leaves the stored code alone, so a running server's
     * printed code keeps working if this fails.
     */
    async completeWithoutSession(ctx: RequestCtx, body: Omit<SetupBody, 'setupCode'>) {
      if (!(await needed()) || (await amkRepo.get(db))) throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
      return (await createFirstAdmin(ctx, body, false)) as Session['user'];
    },
  };

  async function createFirstAdmin(ctx: RequestCtx, body: Omit<SetupBody, 'setupCode'>, withSession: boolean): Promise<Session | Session['user']> {
    {
      const adminId = randomUUID();
      const amkPair = await generateAmk();
      const { material, dek, kek } = await auth.kdfCost(() =>
        newKeyMaterial({
          userId: adminId,
          password: body.password,
          keyVersion: 1,
          kdf: config.kdf,
          amkPublic: amkPair.publicKey,
        }),
      );
      try {
        return await db.transaction(async (tx) => {
          if ((await authRepo.countAdmins(tx)) > 0) throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
          if (await authRepo.findUserWithKeysByEmail(tx, body.email)) throw new AppError('EMAIL_TAKEN', 'An account with this email already exists.');
          const [user] = await tx.insert(users).values({ id: adminId, email: body.email, role: 'admin' }).returning();
          await authRepo.insertKeys(tx, adminId, material);
          const amkRow = await amkRepo.insert(tx, amkPair.publicKey);
          await amkRepo.upsertWrap(tx, {
            adminId,
            amkId: amkRow.id,
            wrappedPrivate: wrapAmkForAdmin(kek, amkPair.privateKey, adminId, amkRow.id),
            keyVersion: 1,
          });
          await amkRepo.deleteSetting(tx, SETUP_CODE_KEY);
          const s = withSession ? await auth.openSession(tx, user!, 1, dek) : null;
          await audit.record(tx, { ...ctx, actor: { id: adminId, email: body.email, role: 'admin' } }, {
            action: 'setup.admin_created',
            outcome: 'success',
            target: `user:${adminId}`,
            details: { amkId: amkRow.id },
          });
          const u = toUser(user!, { keyVersion: 1 });
          return s ? { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt, user: u } : u;
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
        throw e;
      } finally {
        wipe(dek, kek, amkPair.privateKey);
      }
    }
  }
}
export type SetupService = ReturnType<typeof createSetupService>;
