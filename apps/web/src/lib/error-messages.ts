import type { ErrorCode } from '@keyturn/shared';
import { type ApiError, type ClientErrorCode, detailNumber, isApiError } from './api-error';

type Code = ErrorCode | ClientErrorCode;

/** Default wording per code, in product words. Screens may override a code with a sharper message. */
const MESSAGES: Record<Code, string> = {
  VALIDATION_FAILED: 'Some of the fields are not valid. Check them and try again.',
  UNAUTHENTICATED: 'Your session ended. Please sign in again.',
  INVALID_CREDENTIALS: 'That email and password do not match an account.',
  ADMIN_REAUTH_FAILED: 'Your admin password was not accepted.',
  WRONG_TEMP_PASSWORD: 'The temporary password is not correct.',
  FORBIDDEN: 'You are not allowed to do that.',
  CSRF_FAILED: 'Your session could not be verified. Reload the page and try again.',
  SELF_APPROVAL_FORBIDDEN: 'You cannot approve your own key rotation request. Another admin has to approve it.',
  NOT_FOUND: 'That item does not exist, or it is not yours.',
  METHOD_NOT_ALLOWED: 'That action is not supported.',
  INVALID_STATE: 'This request is no longer in a state that allows that action. The list has been refreshed.',
  LOST_RACE: 'Someone else acted on this at the same moment. The list has been refreshed; try again.',
  KEY_VERSION_STALE: 'Your keys were rotated after you signed in. Please sign in again.',
  OPEN_REQUEST_EXISTS: 'You already have an open key rotation request. Cancel it or finish it first.',
  EMAIL_TAKEN: 'An account with that email already exists.',
  SETUP_REQUIRED: 'Keyturn has not been set up yet. An administrator must complete first-run setup.',
  SETUP_DONE: 'Keyturn is already set up. Sign in instead.',
  SECRETS_CHANGED:
    'Secrets were added, changed or deleted after the rotation, so restoring the old keys would lose those changes. The server refused to restore.',
  KEY_CHECK_FAILED: 'Your stored key did not pass its integrity check. Nothing was changed; contact your administrator.',
  ESCROW_CHECK_FAILED: 'The admin key copy for this account could not be verified. Nothing was changed.',
  AMK_MISMATCH:
    'The stored admin master public key does not match the admin master key. Nothing was changed. Treat this as a security incident and investigate before finalizing anything.',
  TOKEN_EXPIRED: 'This rotation token has expired. Request a new key rotation.',
  PAYLOAD_TOO_LARGE: 'That is too large to store.',
  UNSUPPORTED_MEDIA_TYPE: 'The server did not accept the request format.',
  TOKEN_REVOKED: 'This rotation token was revoked after too many wrong temporary passwords. Request a new key rotation.',
  RATE_LIMITED: 'Too many attempts. Wait a moment and try again.',
  INTERNAL: 'Something went wrong on the server. Try again; if it keeps happening, tell your administrator.',
  UNAVAILABLE: 'The server is temporarily unavailable. Try again in a moment.',
  NETWORK_ERROR: 'Could not reach the Keyturn server. Check your connection and try again.',
  BAD_RESPONSE: 'The server sent an answer this app does not understand. Reload the page.',
};

export type MessageOverrides = Partial<Record<Code, string | ((e: ApiError) => string)>>;

/** A sentence a person understands, for any thrown value. */
export function errorMessage(e: unknown, overrides: MessageOverrides = {}): string {
  if (!isApiError(e)) return 'Something unexpected went wrong. Reload the page and try again.';
  const o = overrides[e.code];
  let msg = typeof o === 'function' ? o(e) : (o ?? MESSAGES[e.code]);
  if (e.code === 'RATE_LIMITED' && e.retryAfter) msg = `Too many attempts. Try again in ${e.retryAfter} seconds.`;
  if (e.code === 'WRONG_TEMP_PASSWORD' && !o) {
    const left = detailNumber(e, 'attemptsLeft');
    if (left !== null) msg = `${msg} ${left === 1 ? '1 try left' : `${left} tries left`} before the token is revoked.`;
  }
  return msg;
}

/** Field-level problems of a 400, as `path → message`, when the server sent them. */
export function fieldErrors(e: unknown): Record<string, string> {
  if (!isApiError(e) || e.code !== 'VALIDATION_FAILED') return {};
  const out: Record<string, string> = {};
  const d = e.details;
  const list = Array.isArray(d)
    ? d
    : d && typeof d === 'object' && Array.isArray((d as { issues?: unknown }).issues)
      ? (d as { issues: unknown[] }).issues
      : [];
  for (const item of list) {
    if (item && typeof item === 'object') {
      const { path, message } = item as { path?: unknown; message?: unknown };
      const key = Array.isArray(path) ? path.join('.') : typeof path === 'string' ? path : '';
      if (key && typeof message === 'string' && !out[key]) out[key] = message;
    }
  }
  return out;
}
