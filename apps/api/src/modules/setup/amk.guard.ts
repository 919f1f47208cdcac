import { AppError } from '@keyturn/shared';
import { amkFingerprint, amkPublicFromPrivate, unwrapAmkForAdmin, wipe } from '@keyturn/shared/crypto';
import type { Db } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { Metrics } from '../health/metrics';
import type { AmkRepo } from './amk.repo';

export interface AmkGuardDeps {
  db: Db;
  amkRepo: AmkRepo;
  audit: AuditService;
  metrics: Pick<Metrics, 'amkMismatch'>;
}

/**
 * The one way the AMK private key is opened (finalize, adding an admin, an admin's own rotation):
 * from an admin's share with that admin's KEK (which the caller derived from a password entered
 * in this request), and always checked against the stored AMK public key. A public key row
 * swapped in the database (so that new escrow copies are sealed to someone else's key) is refused
 * (409 AMK_MISMATCH) and raised as a security event and `keyturn_amk_public_key_mismatch_total`,
 * never trusted. The caller wipes the returned private key.
 */
export function createAmkGuard({ db, amkRepo, audit, metrics }: AmkGuardDeps) {
  /** Refuse (and raise) an AMK private key whose public key is not the stored one; the caller wipes it. */
  async function verify(ctx: RequestCtx, priv: Buffer, amk: { id: string; publicKey: Buffer }, during: string): Promise<void> {
    const actual = amkPublicFromPrivate(priv);
    if (actual.equals(amk.publicKey)) return;
    wipe(priv);
    metrics.amkMismatch.inc();
    await audit.recordDetached(ctx, {
      action: 'amk.public_key_mismatch',
      outcome: 'failure',
      target: `amk:${amk.id}`,
      details: { during, stored: amkFingerprint(amk.publicKey), expected: amkFingerprint(actual) },
    });
    throw new AppError(
      'AMK_MISMATCH',
      'The stored admin master public key does not belong to the admin master key: escrow copies may have been sealed to another key. Nothing was changed; investigate before going on.',
    );
  }

  return {
    async open(ctx: RequestCtx, adminId: string, kek: Buffer, during: string) {
      const [wrap, amk] = await Promise.all([amkRepo.wrapFor(db, adminId), amkRepo.get(db)]);
      if (!wrap || !amk) throw new AppError('FORBIDDEN', 'This admin holds no share of the admin master key.');
      const priv = unwrapAmkForAdmin(kek, wrap.wrappedPrivate, adminId, wrap.amkId);
      await verify(ctx, priv, amk, during);
      return { priv, amk, wrap };
    },

    /**
     * An AMK private key that reached this request another way (an admin's account recovery,
     * sealed to the requester's recovery key by the approving admin), checked the same way.
     */
    async check(ctx: RequestCtx, priv: Buffer, during: string) {
      const amk = await amkRepo.get(db);
      if (!amk) {
        wipe(priv);
        throw new AppError('SETUP_REQUIRED', 'Keyturn has no admin master key.');
      }
      await verify(ctx, priv, amk, during);
      return { priv, amk, wrap: { amkId: amk.id } };
    },
  };
}
export type AmkGuard = ReturnType<typeof createAmkGuard>;
