import { ERROR_STATUS, type ErrorCode, ErrorBodySchema } from '@keyturn/shared';
import type { z } from 'zod';
import { ApiError } from './api-error';
import { csrf } from './csrf';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | undefined | null>;

export interface RequestOptions<S extends z.ZodType> {
  method?: Method;
  body?: unknown;
  query?: Query;
  /** The shared zod schema of the answer; the answer is parsed with it. */
  schema: S;
  signal?: AbortSignal;
}

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

const statusToCode = (status: number): ErrorCode => {
  const hit = (Object.entries(ERROR_STATUS) as [ErrorCode, number][]).find(([, s]) => s === status);
  return hit ? hit[0] : 'INTERNAL';
};

/** One fetch for the whole app: same-origin cookie, CSRF header on unsafe methods, zod-parsed answers. */
export async function request<S extends z.ZodType>(path: string, opts: RequestOptions<S>): Promise<z.infer<S>> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') {
    const token = csrf.get();
    if (token) headers['x-csrf-token'] = token;
  }
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), {
      method,
      headers,
      credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError({ status: 0, code: 'NETWORK_ERROR', message: 'Could not reach the Keyturn server.' });
  }

  const text = await res.text();
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }

  if (!res.ok) {
    const parsed = ErrorBodySchema.safeParse(json);
    const retry = Number(res.headers.get('retry-after'));
    const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
    if (parsed.success) {
      const { code, message, requestId, details } = parsed.data.error;
      throw new ApiError({ status: res.status, code, message, requestId, details, retryAfter });
    }
    throw new ApiError({
      status: res.status,
      code: statusToCode(res.status),
      message: `The server answered ${res.status}.`,
      retryAfter,
    });
  }

  const parsed = opts.schema.safeParse(json);
  if (!parsed.success) {
    console.error(`Unexpected answer from ${method} ${path}`, parsed.error.issues);
    throw new ApiError({ status: res.status, code: 'BAD_RESPONSE', message: 'The server sent an answer this app does not understand.' });
  }
  return parsed.data;
}
