import { z } from 'zod';

/**
 * The one list of error codes and the one code → HTTP status table.
 * Every error the API returns is `{ error: { code, message, requestId, details? } }`.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  ADMIN_REAUTH_FAILED: 401,
  WRONG_TEMP_PASSWORD: 401,
  FORBIDDEN: 403,
  CSRF_FAILED: 403,
  SELF_APPROVAL_FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INVALID_STATE: 409,
  LOST_RACE: 409,
  KEY_VERSION_STALE: 409,
  OPEN_REQUEST_EXISTS: 409,
  EMAIL_TAKEN: 409,
  SETUP_REQUIRED: 409,
  SETUP_DONE: 409,
  SECRETS_CHANGED: 409,
  ESCROW_CHECK_FAILED: 409,
  AMK_MISMATCH: 409,
  KEY_CHECK_FAILED: 409,
  TOKEN_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOKEN_REVOKED: 423,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ErrorCodeSchema = z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]);

export const ErrorBodySchema = z.object({
  error: z.object({
    code: ErrorCodeSchema,
    message: z.string(),
    requestId: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Thrown by services; the API's error handler turns it into the one error body. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
