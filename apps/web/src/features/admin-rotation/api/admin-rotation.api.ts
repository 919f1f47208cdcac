import {
  type AdminPasswordBody,
  ApproveResultSchema,
  type RejectBody,
  RestoreResultSchema,
  RotationListSchema,
  type RotationKind,
  type RotationStatus,
  StatusResultSchema,
} from '@keyturn/shared';
import { keepPreviousData, queryOptions, useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { adminRotationKeys } from '../../../lib/query-keys';

/** The most a list asks for at once (the API's cap); the console pages through them itself. */
export const LIST_LIMIT = 200;

const watched = (statuses: readonly string[]) => statuses.some((s) => s === 'pending' || s === 'approved' || s === 'in_progress');

/** Rotation requests in any of `statuses` (of one kind, when given; the server filters), newest first. */
export const adminRotationsQueryOptions = (statuses: readonly RotationStatus[], kind?: RotationKind) => {
  const status = statuses.join(',');
  return queryOptions({
    queryKey: adminRotationKeys.list(status, kind ?? ''),
    queryFn: ({ signal }) =>
      request('/admin/api/rotation_requests', { schema: RotationListSchema, query: { status, kind, limit: LIST_LIMIT, offset: 0 }, signal }),
    placeholderData: keepPreviousData,
    // Open requests change under other admins' and users' hands: keep watching them.
    refetchInterval: watched(statuses) ? 15_000 : false,
  });
};

const tokenPath = (action: string, tokenId: string) => `/admin/api/${action}/${encodeURIComponent(tokenId)}`;

/** The whole console (rotation and recovery lists share the key's root). */
export function useInvalidateAll() {
  const qc = useQueryClient();
  return () => qc.invalidateQueries({ queryKey: adminRotationKeys.all });
}

export function useApprove() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ tokenId, body }: { tokenId: string; body: AdminPasswordBody }) =>
      request(tokenPath('approve_rotation', tokenId), { method: 'POST', body, schema: ApproveResultSchema }),
    onSettled: invalidate,
  });
}

export function useReject() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ tokenId, body }: { tokenId: string; body: RejectBody }) =>
      request(tokenPath('reject_rotation', tokenId), { method: 'POST', body, schema: StatusResultSchema }),
    onSettled: invalidate,
  });
}

export function useFinalize() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ tokenId, body }: { tokenId: string; body: AdminPasswordBody }) =>
      request(tokenPath('finalize_a_dek', tokenId), { method: 'POST', body, schema: StatusResultSchema }),
    onSettled: invalidate,
  });
}

export function useRestore() {
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ tokenId, body }: { tokenId: string; body: AdminPasswordBody }) =>
      request(tokenPath('restore_rotation', tokenId), { method: 'POST', body, schema: RestoreResultSchema }),
    onSettled: invalidate,
  });
}
