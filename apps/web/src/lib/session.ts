import type { QueryClient } from '@tanstack/react-query';
import { csrf } from './csrf';
import { authKeys } from './query-keys';

/**
 * After any answer that carries a fresh session (login, register, setup, key rotation): remember
 * its CSRF token, drop everything cached under the previous session and reload who we are.
 */
export async function adoptSession(qc: QueryClient, csrfToken: string): Promise<void> {
  csrf.set(csrfToken);
  qc.removeQueries({ predicate: (q) => q.queryKey[0] !== authKeys.all[0] });
  // Refetch (even if no screen watches it yet) but keep the old answer meanwhile: resetting it
  // would unmount every signed-in screen for a moment and lose its state (e.g. a rotation result).
  await qc.invalidateQueries({ queryKey: authKeys.all, refetchType: 'all' });
}
