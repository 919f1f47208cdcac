import { AuditVerifySchema, MaintenanceRunSchema, SystemStatusSchema } from '@keyturn/shared';
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { adminHealthKeys } from '../../../lib/query-keys';

export const systemStatusQueryOptions = () =>
  queryOptions({
    queryKey: adminHealthKeys.status(),
    queryFn: ({ signal }) => request('/admin/api/rotation_status', { schema: SystemStatusSchema, signal }),
    refetchInterval: 30_000,
  });

export const useSystemStatus = () => useQuery(systemStatusQueryOptions());

export function useMaintenance(kind: 'cleanup' | 'recover') {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => request(`/admin/api/maintenance/${kind}`, { method: 'POST', schema: MaintenanceRunSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: adminHealthKeys.all }),
  });
}

/**
 * A full walk of the audit chain (the same as the audit log page's). The server records its verdict,
 * which the status then reports: status itself never walks the chain.
 */
export function useVerifyAudit() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => request('/admin/api/audit/verify', { schema: AuditVerifySchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: adminHealthKeys.all }),
  });
}
