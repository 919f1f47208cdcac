import { AuditListSchema, AuditVerifySchema } from '@keyturn/shared';
import { keepPreviousData, queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { type AuditFilters, adminAuditKeys } from '../../../lib/query-keys';

export type { AuditFilters };

/** The whole trail as NDJSON, oldest first (the server takes no filters here). */
export const AUDIT_EXPORT_URL = '/admin/api/audit/export';

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
