import { createPasswordService } from './password.service';
import { createRecoveryAdminService } from './recovery.admin.service';
import { createRecoveryComplete } from './recovery.complete';
import type { RecoveryDeps } from './recovery.deps';
import { createRecoveryService } from './recovery.service';

export type { RecoveryDeps };

/** Password change and account recovery (README): one object for the routes and maintenance. */
export function createRecovery(deps: RecoveryDeps) {
  const admin = createRecoveryAdminService(deps);
  return {
    changePassword: createPasswordService(deps),
    ...createRecoveryService(deps),
    list: admin.list,
    approve: admin.approve,
    reject: admin.reject,
    complete: createRecoveryComplete(deps, admin.expireIfOverdue),
  };
}
export type Recovery = ReturnType<typeof createRecovery>;
