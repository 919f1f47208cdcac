import {
  type LoginBody,
  LoginBodySchema,
  MeSchema,
  type Me,
  OkSchema,
  type RegisterBody,
  RegisterBodySchema,
  SessionSchema,
} from '@keyturn/shared';
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { request } from '../../../lib/api-client';
import { isApiError } from '../../../lib/api-error';
import { csrf } from '../../../lib/csrf';
import { authKeys } from '../../../lib/query-keys';
import { adoptSession } from '../../../lib/session';
import { sessionEvents } from '../../../lib/session-events';

export { LoginBodySchema, RegisterBodySchema };

/** The signed-in user, or null when there is no session. */
export async function getMe(): Promise<Me | null> {
  try {
    const me = await request('/api/auth/me', { schema: MeSchema });
    csrf.set(me.session.csrfToken);
    return me;
  } catch (e) {
    if (isApiError(e) && e.code === 'UNAUTHENTICATED') {
      const hadSession = csrf.get() !== null;
      csrf.set(null);
      if (hadSession) sessionEvents.end('expired');
      return null;
    }
    throw e;
  }
}

export const meQueryOptions = () =>
  queryOptions({ queryKey: authKeys.me(), queryFn: getMe, staleTime: 60_000, refetchOnWindowFocus: true });

export const useMe = () => useQuery(meQueryOptions());

function useAdoptSession() {
  const qc = useQueryClient();
  return (csrfToken: string) => adoptSession(qc, csrfToken);
}

export function useLogin() {
  const adopt = useAdoptSession();
  return useMutation({
    mutationFn: (body: LoginBody) => request('/api/auth/login', { method: 'POST', body, schema: SessionSchema }),
    onSuccess: (s) => adopt(s.csrfToken),
  });
}

export function useRegister() {
  const adopt = useAdoptSession();
  return useMutation({
    mutationFn: (body: RegisterBody) => request('/api/auth/register', { method: 'POST', body, schema: SessionSchema }),
    onSuccess: (s) => adopt(s.csrfToken),
  });
}

export function useLogout() {
  return useMutation({
    mutationFn: () => request('/api/auth/logout', { method: 'POST', schema: OkSchema }),
    // Signed out either way: a failed logout of an already-dead session is still "signed out".
    onSettled: () => sessionEvents.end('signed-out'),
  });
}
