import type { AuditQuery } from '@keyturn/shared';

/** One query-key factory per feature; invalidate by the feature's `all`. */
export const authKeys = {
  all: ['auth'] as const,
  me: () => [...authKeys.all, 'me'] as const,
};

export const setupKeys = {
  all: ['setup'] as const,
  status: () => [...setupKeys.all, 'status'] as const,
};

export const vaultKeys = {
  all: ['vault'] as const,
  list: () => [...vaultKeys.all, 'list'] as const,
  secret: (id: string) => [...vaultKeys.all, 'secret', id] as const,
};

export const rotationKeys = {
  all: ['rotation'] as const,
  mine: () => [...rotationKeys.all, 'mine'] as const,
};

/** The admin console's queue: rotation requests and, beside them, account recovery requests. */
export const adminRotationKeys = {
  all: ['admin-rotation'] as const,
  /** `statuses`: comma-separated, as sent in `?status=`; `kind`: as sent in `?kind=` ('' for all). */
  list: (statuses: string, kind = '') => [...adminRotationKeys.all, 'list', statuses, kind] as const,
};

/** Under the rotation console's key: invalidating `adminRotationKeys.all` refreshes both lists. */
export const adminRecoveryKeys = {
  all: [...adminRotationKeys.all, 'recovery'] as const,
  list: (statuses: string) => [...adminRecoveryKeys.all, 'list', statuses] as const,
};

/** The signed-in user's own account: password change, recovery notices. */
export const accountKeys = {
  all: ['account'] as const,
  recoveryNotices: () => [...accountKeys.all, 'recovery-notices'] as const,
};

export const adminHealthKeys = {
  all: ['admin-health'] as const,
  status: () => [...adminHealthKeys.all, 'status'] as const,
};

export type AuditFilters = Pick<AuditQuery, 'actor' | 'action' | 'outcome' | 'from' | 'to'>;

export const adminAuditKeys = {
  all: ['admin-audit'] as const,
  list: (filters: AuditFilters, offset: number, limit: number) =>
    [...adminAuditKeys.all, 'list', filters, offset, limit] as const,
  verify: () => [...adminAuditKeys.all, 'verify'] as const,
};

/** Adding an admin is a mutation only (no list to read back); the key names it in the mutation cache. */
export const adminAccountKeys = {
  all: ['admin-accounts'] as const,
  create: () => [...adminAccountKeys.all, 'create'] as const,
};

/** The signed-in user's in-app inbox: the bell's unread poll and the notifications page's lists. */
export const notificationKeys = {
  all: ['notifications'] as const,
  unread: () => [...notificationKeys.all, 'unread'] as const,
  lists: () => [...notificationKeys.all, 'list'] as const,
  /** `filter`: 'all' or 'unread'. */
  list: (filter: 'all' | 'unread', offset: number, limit: number) => [...notificationKeys.lists(), filter, offset, limit] as const,
};

/** Notification delivery as admins see it: channel status and the email queue. */
export const adminNotificationKeys = {
  all: ['admin-notifications'] as const,
  channels: () => [...adminNotificationKeys.all, 'channels'] as const,
  /** `statuses`: comma-separated, as sent in `?status=` ('' for all). */
  queue: (statuses: string, offset: number, limit: number) => [...adminNotificationKeys.all, 'queue', statuses, offset, limit] as const,
};
