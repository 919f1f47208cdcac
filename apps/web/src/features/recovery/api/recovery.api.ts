import {
  type RecoveryCompleteBody,
  RecoveryCompleteBodySchema,
  RecoveryCompletedSchema,
  type RecoveryRequestBody,
  RecoveryRequestBodySchema,
  RecoveryRequestedSchema,
} from '@keyturn/shared';
import { useMutation } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';

export { RecoveryCompleteBodySchema, RecoveryRequestBodySchema };

/**
 * "Forgot password?": no session. The answer has the same shape whether or not the email has an
 * account, so the screen says the same thing either way.
 */
export function useRequestRecovery() {
  return useMutation({
    mutationFn: (body: RecoveryRequestBody) =>
      request('/api/recovery/request', { method: 'POST', body, schema: RecoveryRequestedSchema }),
  });
}

/** After an administrator approved: re-keys the vault and signs every session out (no session here either). */
export function useCompleteRecovery() {
  return useMutation({
    mutationFn: (body: RecoveryCompleteBody) =>
      request('/api/recovery/complete', { method: 'POST', body, schema: RecoveryCompletedSchema }),
  });
}
