import {
  type AdminPasswordBody,
  ApproveResultSchema,
  type RejectBody,
  RestoreResultSchema,
  RotationListSchema,
  type RotationStatus,
  StatusResultSchema,
} from '@keyturn/shared';
import { keepPreviousData, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { adminRotationKeys } from '../../../lib/query-keys';

export const PAGE_SIZE = 25;

export const adminRotationsQueryOptions = (status: RotationStatus, offset = 0, limit = PAGE_SIZE) =>
  queryOptions({
    queryKey: adminRotationKeys.list(status, offset),
    queryFn: ({ signal }) =>
      request('/admin/api/rotation_requests', { schema: RotationListSchema, query: { status, limit, offset }, signal }),
    placeholderData: keepPreviousData,
    refetchInterval: status === 'pending' || status === 'approved' || status === 'in_progress' ? 15_000 : false,
  });

export const useAdminRotations = (status: RotationStatus, offset = 0, enabled = true) =>
  useQuery({ ...adminRotationsQueryOptions(status, offset), enabled });

/** Several statuses at once (history, approved + in progress): one request, newest first. */
export function useAdminRotationsMany(statuses: readonly RotationStatus[], enabled = true) {
  const status = statuses.join(',');
  const q = useQuery({
    queryKey: [...adminRotationKeys.all, 'many', status] as const,
    queryFn: ({ signal }) =>
      request('/admin/api/rotation_requests', { schema: RotationListSchema, query: { status, limit: 200, offset: 0 }, signal }),
    enabled,
    refetchInterval: statuses.some((s) => s === 'approved' || s === 'in_progress') ? 15_000 : false,
  });
  return {
    isPending: q.isPending,
    error: q.error ?? null,
    total: q.data?.total ?? 0,
    items: q.data?.items ?? [],
    refetch: () => q.refetch(),
  };
}

const tokenPath = (action: string, tokenId: string) => `/admin/api/${action}/${encodeURIComponent(tokenId)}`;

function useInvalidateAll() {
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
