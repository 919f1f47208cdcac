import { AppError } from '@keyturn/shared';
import type { KdfParams } from '@keyturn/shared/crypto';
import type { Database, Db } from '../../db/client';
import type { Clock } from '../../lib/clock';
import type { AuditService } from '../audit/audit.service';
import type { AuthRepo } from '../auth/auth.repo';
import type { AuthService } from '../auth/auth.service';
import type { RotationRepo } from '../rotation/rotation.repo';
import type { RotationService } from '../rotation/rotation.service';
import type { AmkGuard } from '../setup/amk.guard';
import type { Notify } from '../notifications/notifier';
import type { AmkRepo } from '../setup/amk.repo';
import type { RecoveryRepo } from './recovery.repo';

/** What the password change and every recovery step use: the engine's pieces, never copies of them. */
export interface RecoveryDeps {
  db: Db;
  database: Database;
  repo: RecoveryRepo;
  authRepo: AuthRepo;
  rotationRepo: RotationRepo;
  amkRepo: AmkRepo;
  amkGuard: AmkGuard;
  auth: AuthService;
  rotation: Pick<RotationService, 'commit' | 'dbNow'>;
  audit: AuditService;
  clock: Clock;
  notify: Notify;
  config: {
    kdf: KdfParams;
    instanceId: string;
    RECOVERY_TTL_SECONDS: number;
    RECOVERY_MAX_ATTEMPTS: number;
  };
}

export const recoveryTarget = (id: string) => `recovery:${id}`;
export const recoveryNotFound = () => new AppError('NOT_FOUND', 'No such recovery request.');
