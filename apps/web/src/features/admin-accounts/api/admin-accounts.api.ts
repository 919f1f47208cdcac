import { type CreateAdminBody, CreateAdminBodySchema, UserSchema } from '@keyturn/shared';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { adminAccountKeys, adminAuditKeys } from '../../../lib/query-keys';

export { CreateAdminBodySchema };

/**
 * Adds another admin, who gets a share of the admin master key. `adminPassword` is the calling
 * admin's own password (fresh re-authentication).
 *
 * The mutation cache keeps a mutation's variables: the passwords are wiped from them as soon as
 * the request has been sent (the body is serialised before the first await), and the settled
 * mutation is dropped as soon as the screen unmounts.
 */
export function useCreateAdmin() {
  const qc = useQueryClient();
  return useMutation({
    mutationKey: adminAccountKeys.create(),
    mutationFn: (body: CreateAdminBody) =>
      request('/admin/api/admins', { method: 'POST', body, schema: UserSchema }),
    gcTime: 0,
    onSettled: (_data, _error, body) => {
      body.password = '';
      body.adminPassword = '';
      // Both outcomes are audited (admin.created success / denied).
      return qc.invalidateQueries({ queryKey: adminAuditKeys.all });
    },
  });
}
