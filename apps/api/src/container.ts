import type { Config } from './config';
import type { Database } from './db/client';
import { type Clock, dbClock } from './lib/clock';
import { createAuditRepo } from './modules/audit/audit.repo';
import { createAuditService } from './modules/audit/audit.service';
import { createAuditVerdicts } from './modules/audit/audit.verdicts';
import { createAuthRepo } from './modules/auth/auth.repo';
import { createAuthService } from './modules/auth/auth.service';
import type { TokenSigner } from './modules/auth/tokens';
import { createHealthService } from './modules/health/health.service';
import { createMetrics } from './modules/health/metrics';
import { createMaintenanceService } from './modules/maintenance/maintenance.service';
import { createDispatcher } from './modules/notifications/dispatcher';
import { createMailer } from './modules/notifications/mailer';
import { createNotifier } from './modules/notifications/notifier';
import { createNotificationsRepo, type DeliveryRow } from './modules/notifications/notifications.repo';
import { createNotificationsService } from './modules/notifications/notifications.service';
import { createRecovery } from './modules/recovery/recovery.module';
import { createRecoveryRepo } from './modules/recovery/recovery.repo';
import { createRotationRepo } from './modules/rotation/rotation.repo';
import { createRotationService, type RotationHooks } from './modules/rotation/rotation.service';
import { createSecretsRepo } from './modules/secrets/secrets.repo';
import { createSecretsService } from './modules/secrets/secrets.service';
import { createAmkGuard } from './modules/setup/amk.guard';
import { createAmkRepo } from './modules/setup/amk.repo';
import { createSetupService } from './modules/setup/setup.service';

export interface ContainerDeps {
  config: Config;
  database: Database;
  signer: TokenSigner;
  clock?: Clock;
  /** Fault points at the rotation's stage boundaries (tests inject failures and pauses). */
  rotationHooks?: RotationHooks;
  /** Fault point of the notification dispatcher (tests: a crash between sending and marking sent). */
  notificationHooks?: { afterSend?: (d: DeliveryRow) => Promise<void> };
}

/** Wires repos into services. Plain factories with narrowed deps; nothing global. */
export function createContainer({ config, database, signer, clock = dbClock, rotationHooks, notificationHooks }: ContainerDeps) {
  const db = database.db;
  const metrics = createMetrics();
  if (database.durability === 'fsync') metrics.pgliteFsyncs.source(() => database.fsyncs);
  const auditRepo = createAuditRepo();
  const audit = createAuditService({ db, repo: auditRepo });
  const authRepo = createAuthRepo();
  const amkRepo = createAmkRepo();
  const notificationsRepo = createNotificationsRepo();
  const mailer = createMailer(config);
  const notifier = createNotifier({ repo: notificationsRepo, mailer });
  const notify = notifier.notify;
  const auth = createAuthService({ db, repo: authRepo, amkRepo, audit, clock, signer, config, onKdf: () => metrics.kdfCount.inc() });
  const amkGuard = createAmkGuard({ db, amkRepo, audit, metrics });
  const setup = createSetupService({ db, amkRepo, amkGuard, authRepo, auth, audit, config, notify });
  const secretsRepo = createSecretsRepo();
  const secrets = createSecretsService({ db, repo: secretsRepo, auth, audit, config });
  const rotationRepo = createRotationRepo();
  const rotation = createRotationService({
    db,
    database,
    repo: rotationRepo,
    authRepo,
    amkRepo,
    amkGuard,
    auth,
    audit,
    clock,
    config,
    metrics,
    notify,
    hooks: rotationHooks ?? {},
  });
  const recoveryRepo = createRecoveryRepo();
  const recovery = createRecovery({ db, database, repo: recoveryRepo, authRepo, rotationRepo, amkRepo, amkGuard, auth, rotation, audit, clock, config, notify });
  const notifications = createNotificationsService({ db, repo: notificationsRepo, mailer, audit, config });
  const dispatcher = createDispatcher({ db, repo: notificationsRepo, mailer, metrics, config, afterSend: notificationHooks?.afterSend });
  const auditVerdicts = createAuditVerdicts({ db, audit, clock, metrics, instanceId: config.instanceId, notify });
  const maintenance = createMaintenanceService({ db, database, rotationRepo, recoveryRepo, audit, auditVerdicts, clock, config, metrics, rotation, notify, notificationChannels: () => notifications.channels() });
  const health = createHealthService({ database, db, amkRepo, setup, maintenance, cacheMs: config.HEALTH_CACHE_SECONDS * 1000 });
  return {
    db,
    database,
    config,
    clock,
    metrics,
    audit,
    auditVerdicts,
    auth,
    setup,
    secrets,
    rotation,
    recovery,
    notifications,
    dispatcher,
    maintenance,
    health,
    repos: { auditRepo, authRepo, amkRepo, secretsRepo, rotationRepo, recoveryRepo, notificationsRepo },
  };
}
export type Container = ReturnType<typeof createContainer>;
