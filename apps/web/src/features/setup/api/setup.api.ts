import { type SetupBody, SessionSchema, SetupStatusSchema } from '@keyturn/shared';
import { queryOptions, useMutation, useQuery } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { setupKeys } from '../../../lib/query-keys';

export const setupStatusQueryOptions = () =>
  queryOptions({
    queryKey: setupKeys.status(),
    queryFn: () => request('/api/setup', { schema: SetupStatusSchema }),
    staleTime: 5 * 60_000,
  });

export const useSetupStatus = () => useQuery(setupStatusQueryOptions());

export function useRunSetup() {
  return useMutation({
    mutationFn: (body: SetupBody) => request('/api/setup', { method: 'POST', body, schema: SessionSchema }),
  });
}
