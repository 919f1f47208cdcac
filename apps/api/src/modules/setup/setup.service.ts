import { randomUUID } from 'node:crypto';
import { AppError, type Session, type SetupBody } from '@keyturn/shared';
import {
  constantTimeEqualStrings,
  generateAmk,
  generateSetupCode,
  type KdfParams,
  newKeyMaterial,
  sha256Hex,
  wipe,
  wrapAmkForAdmin,
} from '@keyturn/shared/crypto';
import type { Db } from '../../db/client';
import { users } from '../../db/schema';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthRepo } from '../auth/auth.repo';
import { type AuthService, toUser } from '../auth/auth.service';
import type { AmkRepo } from './amk.repo';

const SETUP_CODE_KEY = 'setup_code_sha256';

export interface SetupServiceDeps {
  db: Db;
  amkRepo: AmkRepo;
  authRepo: AuthRepo;
  auth: AuthService;
  audit: AuditService;
  config: { kdf: KdfParams; SETUP_CODE?: string | undefined };
}

export function createSetupService({ db, amkRepo, authRepo, auth, audit, config }: SetupServiceDeps) {
  const needed = async () => (await authRepo.countAdmins(db)) === 0;

  return {
    needed,

    /**
     * At start-up while no admin exists: take SETUP_CODE or make a one-time code, keep only its
     * hash, and return it for the operator's console. Returns null once setup is done.
     */
    async prepareSetupCode(): Promise<{ code: string; generated: boolean } | null> {
      if (!(await needed())) {
        await amkRepo.deleteSetting(db, SETUP_CODE_KEY);
        return null;
      }
      const code = config.SETUP_CODE ?? generateSetupCode();
      await amkRepo.putSetting(db, SETUP_CODE_KEY, { hash: sha256Hex(code) });
      return { code, generated: !config.SETUP_CODE };
    },

    /** Create the first admin and the AMK key pair, its private key wrapped only under that admin's KEK. */
    async complete(ctx: RequestCtx, body: SetupBody): Promise<Session> {
      const stored = await amkRepo.getSetting<{ hash: string }>(db, SETUP_CODE_KEY);
      if (!(await needed()) || (await amkRepo.get(db))) {
        throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
      }
      if (!stored || !constantTimeEqualStrings(sha256Hex(body.setupCode.trim()), stored.hash)) {
        await audit.recordDetached(ctx, { action: 'setup.admin_created', outcome: 'denied', details: { reason: 'wrong_setup_code' } });
        throw new AppError('FORBIDDEN', 'The setup code is not right. Use the code printed when the server started.');
      }
      const adminId = randomUUID();
      const amkPair = await generateAmk();
      const { material, dek, kek } = await newKeyMaterial({
        userId: adminId,
        password: body.password,
        keyVersion: 1,
        kdf: config.kdf,
        amkPublic: amkPair.publicKey,
      });
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
          const s = await auth.openSession(tx, user!, 1, dek);
          await audit.record(tx, { ...ctx, actor: { id: adminId, email: body.email, role: 'admin' } }, {
            action: 'setup.admin_created',
            outcome: 'success',
            target: `user:${adminId}`,
            details: { amkId: amkRow.id },
          });
          return { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt, user: toUser(user!, { keyVersion: 1 }) };
        });
      } catch (e) {
        if (!(e instanceof AppError) && /unique|duplicate/i.test(String((e as Error).message))) throw new AppError('SETUP_DONE', 'Keyturn is already set up.');
        throw e;
      } finally {
        wipe(dek, kek, amkPair.privateKey);
      }
    },
  };
}
export type SetupService = ReturnType<typeof createSetupService>;
