/**
 * The CSRF token of the current cookie session. It arrives in every Session answer
 * (login, register, setup, rotation) and in GET /api/auth/me, and is echoed in the
 * `x-csrf-token` header on every unsafe request. Kept in memory only: a reload asks /me again.
 */
let current: string | null = null;

export const csrf = {
  get: (): string | null => current,
  set: (token: string | null): void => {
    current = token;
  },
};
