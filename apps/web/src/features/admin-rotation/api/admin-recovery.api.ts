import {
  type RecoveryApproveBody,
  RecoveryApproveBodySchema,
  RecoveryApprovedSchema,
  RecoveryListSchema,
  type RecoveryRejectBody,
  RecoveryRejectBodySchema,
  RecoveryRequestViewSchema,
  type RecoveryStatus,
} from '@keyturn/shared';
import { keepPreviousData, queryOptions, useMutation } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { adminRecoveryKeys } from '../../../lib/query-keys';
import { LIST_LIMIT, useInvalidateAll } from './admin-rotation.api';

export { RecoveryApproveBodySchema, RecoveryRejectBodySchema };

/** Account recovery requests in any of `statuses`, newest first. */
export const adminRecoveriesQueryOptions = (statuses: readonly RecoveryStatus[]) => {
  const status = statuses.join(',');
  return queryOptions({
    queryKey: adminRecoveryKeys.list(status),
    queryFn: ({ signal }) =>
      request('/admin/api/recovery_requests', { schema: RecoveryListSchema, query: { status, limit: LIST_LIMIT, offset: 0 }, signal }),
    placeholderData: keepPreviousData,
    refetchInterval: statuses.some((s) => s === 'pending' || s === 'approved') ? 15_000 : false,
  });
};

const recoveryPath = (id: string, action: 'approve' | 'reject') => `/admin/api/recovery_requests/${encodeURIComponent(id)}/${action}`;

/** Opens the user's escrow copy for the request's key: needs the admin's password and the confirmation. */
export function useApproveRecovery() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ id, body }: { id: string; body: RecoveryApproveBody }) =>
      request(recoveryPath(id, 'approve'), { method: 'POST', body, schema: RecoveryApprovedSchema }),
    onSettled: invalidate,
  });
}

export function useRejectRecovery() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ id, body }: { id: string; body: RecoveryRejectBody }) =>
      request(recoveryPath(id, 'reject'), { method: 'POST', body, schema: RecoveryRequestViewSchema }),
    onSettled: invalidate,
  });
}
