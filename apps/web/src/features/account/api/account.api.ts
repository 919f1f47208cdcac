import { type ChangePasswordBody, ChangePasswordBodySchema, ChangePasswordResultSchema, OkSchema, RecoveryNoticeListSchema } from '@keyturn/shared';
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { accountKeys } from '../../../lib/query-keys';

export { ChangePasswordBodySchema };

/**
 * Every session of the user is revoked and the caller's replaced: the caller adopts the new
 * session (its CSRF token) from the answer; the server has already set the new cookie.
 */
export function useChangePassword() {
  return useMutation({
    mutationFn: (body: ChangePasswordBody) =>
      request('/api/auth/change_password', { method: 'POST', body, schema: ChangePasswordResultSchema }),
  });
}

/**
 * Recovery requests for this account the owner has not acknowledged: pending ones ("someone asked
 * to recover your account") and every approval ("an administrator opened your recovery copy").
 */
export const recoveryNoticesQueryOptions = () =>
  queryOptions({
    queryKey: accountKeys.recoveryNotices(),
    queryFn: ({ signal }) => request('/api/recovery/notices', { schema: RecoveryNoticeListSchema, signal }),
    staleTime: 60_000,
  });

export const useRecoveryNotices = () => useQuery(recoveryNoticesQueryOptions());

export function useAckRecoveryNotice() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (requestId: string) =>
      request(`/api/recovery/notices/${encodeURIComponent(requestId)}/ack`, { method: 'POST', schema: OkSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: accountKeys.recoveryNotices() }),
  });
}

/** "This wasn't me": the owner ends an open (pending or approved) recovery request of their account. */
export function useCancelRecoveryRequest() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (requestId: string) =>
      request(`/api/recovery/requests/${encodeURIComponent(requestId)}/cancel`, { method: 'POST', schema: OkSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: accountKeys.recoveryNotices() }),
  });
}
