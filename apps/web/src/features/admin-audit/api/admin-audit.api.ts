import { AuditListSchema, AuditVerifySchema } from '@keyturn/shared';
import { keepPreviousData, queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { type AuditFilters, adminAuditKeys } from '../../../lib/query-keys';

export type { AuditFilters };

/** The trail as NDJSON, oldest first, narrowed by the same filters as the list (none: all of it). */
export function auditExportUrl(filters: AuditFilters): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, String(v));
  const s = q.toString();
  return s ? `/admin/api/audit/export?${s}` : '/admin/api/audit/export';
}

export const auditListQueryOptions = (filters: AuditFilters, offset: number, limit: number) =>
  queryOptions({
    queryKey: adminAuditKeys.list(filters, offset, limit),
    queryFn: ({ signal }) => request('/admin/api/audit', { schema: AuditListSchema, query: { ...filters, offset, limit }, signal }),
    placeholderData: keepPreviousData,
  });

export const useAuditList = (filters: AuditFilters, offset: number, limit: number) =>
  useQuery(auditListQueryOptions(filters, offset, limit));

export const useAuditVerify = () =>
  useQuery({
    queryKey: adminAuditKeys.verify(),
    queryFn: ({ signal }) => request('/admin/api/audit/verify', { schema: AuditVerifySchema, signal }),
  });
