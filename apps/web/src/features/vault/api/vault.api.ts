import {
  type CreateSecretBody,
  OkSchema,
  SecretListSchema,
  SecretSchema,
  type UpdateSecretBody,
} from '@keyturn/shared';
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { vaultKeys } from '../../../lib/query-keys';

export const secretListQueryOptions = () =>
  queryOptions({
    queryKey: vaultKeys.list(),
    queryFn: ({ signal }) => request('/api/secrets', { schema: SecretListSchema, signal }),
  });

export const useSecrets = () => useQuery(secretListQueryOptions());

/** A revealed value: never cached beyond its screen, never refetched behind the user's back. */
export const secretQueryOptions = (id: string) =>
  queryOptions({
    queryKey: vaultKeys.secret(id),
    queryFn: ({ signal }) => request(`/api/secrets/${encodeURIComponent(id)}`, { schema: SecretSchema, signal }),
    gcTime: 0,
    staleTime: 0,
    refetchOnWindowFocus: false,
  });

export const useSecret = (id: string, enabled: boolean) => useQuery({ ...secretQueryOptions(id), enabled });

export function useCreateSecret() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateSecretBody) => request('/api/secrets', { method: 'POST', body, schema: SecretSchema }),
    onSuccess: () => qc.invalidateQueries({ queryKey: vaultKeys.list() }),
  });
}

export function useUpdateSecret(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: UpdateSecretBody) =>
      request(`/api/secrets/${encodeURIComponent(id)}`, { method: 'PUT', body, schema: SecretSchema }),
    onSuccess: () => {
      qc.removeQueries({ queryKey: vaultKeys.secret(id) });
      return qc.invalidateQueries({ queryKey: vaultKeys.list() });
    },
  });
}

export function useDeleteSecret() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => request(`/api/secrets/${encodeURIComponent(id)}`, { method: 'DELETE', schema: OkSchema }),
    onSuccess: (_r, id) => {
      qc.removeQueries({ queryKey: vaultKeys.secret(id) });
      return qc.invalidateQueries({ queryKey: vaultKeys.list() });
    },
  });
}
