import '@fastify/cookie';
import { AppError } from '@keyturn/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestCtx } from '../lib/context';
import type { AuditService } from '../modules/audit/audit.service';
import { type AuthContext, type AuthService, type PrefetchedSecret, STALE } from '../modules/auth/auth.service';
import { csrfMatches } from '../modules/auth/tokens';

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
    authVia: 'bearer' | 'cookie' | null;
    /** The secret a route asked to read with the session lookup (undefined: none asked). */
    prefetchedSecret: PrefetchedSecret | undefined;
  }
  interface FastifyContextConfig {
    /** Read this secret of the caller in the session lookup's statement (one round trip). */
    prefetchSecretId?: (request: FastifyRequest) => string;
  }
}

export const COOKIE_SECURE_NAME = '__Host-keyturn_session';
export const COOKIE_PLAIN_NAME = 'keyturn_session';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface AuthPluginOptions {
  auth: AuthService;
  audit: AuditService;
  jwtSecret: string;
  cookieSecure: 'auto' | 'true' | 'false';
  sessionTtlSeconds: number;
}

export function isSecureRequest(request: FastifyRequest, mode: AuthPluginOptions['cookieSecure']): boolean {
  return mode === 'true' || (mode === 'auto' && request.protocol === 'https');
}

/** The one place that turns a request into a caller: bearer header or session cookie (+ CSRF). */
export function registerAuth(app: FastifyInstance, opts: AuthPluginOptions) {
  app.decorateRequest('auth', null);
  app.decorateRequest('authVia', null);
  app.decorateRequest('prefetchedSecret', undefined);

  async function resolve(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      const m = /^Bearer ([A-Za-z0-9_\-.]{10,4096})$/.exec(header);
      if (!m) throw new AppError('UNAUTHENTICATED', 'Sign in first: the Authorization header must be "Bearer <token>".');
      token = m[1];
      request.authVia = 'bearer';
    } else {
      // Over HTTPS only the __Host- cookie counts: it is Secure, host-only and Path=/, so no
      // sibling subdomain or plain-HTTP page could have planted it. The plain name is for HTTP.
      token = isSecureRequest(request, opts.cookieSecure) ? request.cookies[COOKIE_SECURE_NAME] : request.cookies[COOKIE_PLAIN_NAME];
      if (token) request.authVia = 'cookie';
    }
    if (!token) throw new AppError('UNAUTHENTICATED', 'Sign in first.');
    const prefetch = request.routeOptions.config.prefetchSecretId;
    const resolved = await opts.auth.resolve(token, prefetch?.(request));
    if (resolved === STALE) throw new AppError('UNAUTHENTICATED', 'Your keys were rotated after this session began. Sign in again.', { reason: 'key_rotated' });
    if (!resolved) throw new AppError('UNAUTHENTICATED', 'Your session has ended. Sign in again.');
    const { prefetched, ...a } = resolved;
    // Cookies ride along on cross-site requests; bearer tokens do not. So only cookie callers
    // must prove same-origin intent with the per-session CSRF token on unsafe methods.
    if (request.authVia === 'cookie' && UNSAFE.has(request.method)) {
      const given = request.headers['x-csrf-token'];
      if (typeof given !== 'string' || !csrfMatches(opts.jwtSecret, a.sessionId, given)) {
        throw new AppError('CSRF_FAILED', 'This request is missing its CSRF token. Reload the page and try again.');
      }
    }
    request.auth = a;
    request.prefetchedSecret = prefetched;
  }

  app.decorate('requireUser', async (request: FastifyRequest) => {
    await resolve(request);
  });
  app.decorate('requireAdmin', async (request: FastifyRequest) => {
    await resolve(request);
    if (request.auth?.role !== 'admin') {
      // A signed-in non-admin reaching for the admin API is a security event (RELIABILITY B5).
      await opts.audit.recordDetached(ctxOf(request), {
        action: 'admin.access',
        outcome: 'denied',
        target: `route:${request.method} ${request.routeOptions.url ?? request.url}`,
        details: { reason: 'not_admin' },
      });
      throw new AppError('FORBIDDEN', 'This needs an administrator.');
    }
  });

  app.decorate('setSessionCookie', (request: FastifyRequest, reply: FastifyReply, token: string) => {
    const secure = isSecureRequest(request, opts.cookieSecure);
    reply.setCookie(secure ? COOKIE_SECURE_NAME : COOKIE_PLAIN_NAME, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
      maxAge: opts.sessionTtlSeconds,
    });
  });
  app.decorate('clearSessionCookie', (reply: FastifyReply) => {
    reply.clearCookie(COOKIE_SECURE_NAME, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
    reply.clearCookie(COOKIE_PLAIN_NAME, { path: '/', httpOnly: true, sameSite: 'strict' });
  });
}

declare module 'fastify' {
  interface FastifyInstance {
    requireUser: (request: FastifyRequest) => Promise<void>;
    requireAdmin: (request: FastifyRequest) => Promise<void>;
    setSessionCookie: (request: FastifyRequest, reply: FastifyReply, token: string) => void;
    clearSessionCookie: (reply: FastifyReply) => void;
  }
}

/** The audit/authorization context of a request. */
export function ctxOf(request: FastifyRequest): RequestCtx {
  const a = request.auth;
  return {
    requestId: String(request.id),
    clientAddress: request.ip ?? null,
    actor: a ? { id: a.userId, email: a.email, role: a.role } : { id: null, email: null, role: 'anonymous' },
  };
}

export function authOf(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new AppError('UNAUTHENTICATED', 'Sign in first.');
  return request.auth;
}
