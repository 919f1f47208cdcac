import type { ErrorCode } from '@keyturn/shared';

/** Codes the client itself produces: the server never answered, or answered off-contract. */
export type ClientErrorCode = 'NETWORK_ERROR' | 'BAD_RESPONSE';

/** The one error type of the web app: every failed request becomes an ApiError. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | ClientErrorCode;
  readonly requestId: string | null;
  readonly details: unknown;
  /** Seconds, from the Retry-After header of a 429. */
  readonly retryAfter: number | null;

  constructor(init: {
    status: number;
    code: ErrorCode | ClientErrorCode;
    message: string;
    requestId?: string | null;
    details?: unknown;
    retryAfter?: number | null;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId ?? null;
    this.details = init.details;
    this.retryAfter = init.retryAfter ?? null;
  }
}

export const isApiError = (e: unknown): e is ApiError => e instanceof ApiError;

/** A number out of `details` (e.g. `attemptsLeft`), when the server sent one. */
export function detailNumber(e: ApiError, key: string): number | null {
  const d = e.details;
  if (d && typeof d === 'object' && key in d) {
    const v = (d as Record<string, unknown>)[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}
