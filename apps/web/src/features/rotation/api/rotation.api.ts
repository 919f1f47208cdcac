import {
  OPEN_STATUSES,
  type RequestRotationBody,
  type RotateWithTokenBody,
  RotateResultSchema,
  RotationListSchema,
  RotationTokenSchema,
} from '@keyturn/shared';
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { rotationKeys } from '../../../lib/query-keys';

export const myRotationsQueryOptions = () =>
  queryOptions({
    queryKey: rotationKeys.mine(),
    queryFn: ({ signal }) => request('/api/rotation_requests', { schema: RotationListSchema, signal }),
    // While a request is open, watch for the admin's decision.
    refetchInterval: (q) => (q.state.data?.items.some((t) => OPEN_STATUSES.includes(t.status)) ? 10_000 : false),
  });

export const useMyRotations = () => useQuery(myRotationsQueryOptions());

export function useRequestRotation() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: RequestRotationBody) =>
      request('/api/request_key_rotation', { method: 'POST', body, schema: RotationTokenSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: rotationKeys.all }),
  });
}

export function useCancelRotation() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (tokenId: string) =>
      request(`/api/rotation_requests/${encodeURIComponent(tokenId)}/cancel`, { method: 'POST', schema: RotationTokenSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: rotationKeys.all }),
  });
}

export function useRotateWithToken() {
  return useMutation({
    mutationFn: (body: RotateWithTokenBody) =>
      request('/api/rotate_keys_with_token', { method: 'POST', body, schema: RotateResultSchema }),
  });
}
