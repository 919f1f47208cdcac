import type { AuditQuery, RotationStatus } from '@keyturn/shared';

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

export const adminRotationKeys = {
  all: ['admin-rotation'] as const,
  list: (status: RotationStatus, offset: number) => [...adminRotationKeys.all, 'list', status, offset] as const,
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
