import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyJwt from '@fastify/jwt';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { AppError } from '@keyturn/shared';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config';
import { type Container, type ContainerDeps, createContainer } from './container';
import type { Database } from './db/client';
import type { Clock } from './lib/clock';
import { auditRoutes } from './modules/audit/audit.routes';
import { authRoutes } from './modules/auth/auth.routes';
import { maintenanceRoutes } from './modules/maintenance/maintenance.routes';
import { rotationAdminRoutes, rotationUserRoutes } from './modules/rotation/rotation.routes';
import type { SessionClaims, TokenSigner } from './modules/auth/tokens';
import { healthRoutes } from './modules/health/health.routes';
import { secretsRoutes } from './modules/secrets/secrets.routes';
import { adminAccountRoutes } from './modules/setup/setup.admin.routes';
import { setupRoutes } from './modules/setup/setup.routes';
import { notificationAdminRoutes, notificationUserRoutes } from './modules/notifications/notifications.routes';
import { recoveryAdminRoutes, recoveryUserRoutes } from './modules/recovery/recovery.routes';
import { registerAuth } from './plugins/auth';
import { postgresRateLimitStore } from './plugins/rate-limit-store';
import { clientErrorHandler, frameworkErrors, registerErrorHandler, sendError } from './plugins/error-handler';
import { registerGracefulClose } from './plugins/graceful-close';
import { registerStrictJsonParser } from './plugins/json-body';
import { registerSecurityHeaders, staticSecurityHeaders } from './plugins/security-headers';

export interface BuildAppDeps {
  config: Config;
  database: Database;
  clock?: Clock;
  rotationHooks?: ContainerDeps['rotationHooks'];
  notificationHooks?: ContainerDeps['notificationHooks'];
  /** Where JSON logs go (tests capture them to grep for canaries; the server: a non-blocking stdout). Default: stdout. */
  logStream?: { write(line: string): void };
}

/** Fields that never reach a log line, wherever they appear. */
const SECRET_FIELDS = ['password', 'currentPassword', 'newPassword', 'tempPassword', 'adminPassword', 'setupCode', 'token', 'authorization', 'cookie'];
export const REDACT_PATHS = [
  // at the top level of a log object, one level down, and in a request body
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `req.body.${f}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.tempPassword',
  '*.adminPassword',
  '*.setupCode',
  '*.token',
  '*.authorization',
  '*.cookie',
];

declare module 'fastify' {
  interface FastifyInstance {
    container: Container;
  }
}

/** Builds the whole app as a plugin tree; no globals, so each test can build its own. */
export async function buildApp(deps: BuildAppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const securityHeaders = staticSecurityHeaders();
  const app = Fastify({
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      ...(deps.logStream ? { stream: deps.logStream } : {}),
    },
    genReqId: () => randomUUID(),
    bodyLimit: 1_048_576,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    trustProxy: config.TRUST_PROXY ? config.TRUST_PROXY.split(',').map((s) => s.trim()) : false,
    routerOptions: { maxParamLength: 200 },
    // Refusals before any route runs (bad percent-encoding, unparseable HTTP) answer with the
    // one error body too, never Fastify's own shapes.
    frameworkErrors: frameworkErrors(securityHeaders),
    clientErrorHandler: clientErrorHandler(securityHeaders),
    // While closing, late requests get registerGracefulClose's 503 in the one error body.
    return503OnClosing: false,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a text/plain or form body (the classic CSRF carriers) is refused with 415.
  app.removeContentTypeParser(['text/plain']);
  registerStrictJsonParser(app);

  await app.register(fastifyJwt, {
    secret: config.jwtSecret,
    sign: { algorithm: 'HS256', iss: 'keyturn', aud: 'keyturn' },
    verify: { algorithms: ['HS256'], allowedIss: 'keyturn', allowedAud: 'keyturn' },
  });
  const signer: TokenSigner = {
    sign: (claims, ttl) => app.jwt.sign({ ...claims }, { expiresIn: ttl }),
    verify: (token) => app.jwt.verify<SessionClaims>(token),
  };

  const container = createContainer({ config, database: deps.database, signer, ...(deps.clock ? { clock: deps.clock } : {}), ...(deps.rotationHooks ? { rotationHooks: deps.rotationHooks } : {}), ...(deps.notificationHooks ? { notificationHooks: deps.notificationHooks } : {}) });
  app.decorate('container', container);

  registerErrorHandler(app);
  await app.register(fastifyCookie);
  registerSecurityHeaders(app, securityHeaders);
  registerGracefulClose(app);
  const sharedCounters = config.RATE_LIMIT_STORE === 'database' || (config.RATE_LIMIT_STORE === 'auto' && deps.database.kind === 'postgres');
  if (sharedCounters && !deps.database.pool) throw new Error('RATE_LIMIT_STORE=database needs DATABASE_URL (a Postgres server)');
  await app.register(fastifyRateLimit, {
    global: true,
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: '1 minute',
    // Counted in Postgres, so every instance shares one count per client (README: rate limits).
    ...(sharedCounters ? { store: postgresRateLimitStore(deps.database.pool!) } : {}),
    // The plugin's key: request.ip (which honours X-Forwarded-For only from TRUST_PROXY
    // addresses), IPv4-mapped addresses as IPv4, and an IPv6 client by its /64, since one
    // subscriber usually holds a whole /64.
    ipv6Subnet: 64,
    errorResponseBuilder: (_req, ctx) =>
      new AppError('RATE_LIMITED', 'Too many requests. Slow down and try again shortly.', { retryAfterSeconds: Math.ceil(ctx.ttl / 1000) }),
  });

  registerAuth(app, { auth: container.auth, audit: container.audit, jwtSecret: config.jwtSecret, cookieSecure: config.COOKIE_SECURE, sessionTtlSeconds: config.SESSION_TTL_SECONDS });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Keyturn API', version: '0.1.0', description: 'Secrets vault with admin-approved, token-based key rotation.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    container.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    container.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(setupRoutes(container.setup, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(authRoutes(container.auth, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(secretsRoutes(container.secrets));
  await app.register(rotationUserRoutes(container.rotation, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(rotationAdminRoutes(container.rotation));
  await app.register(recoveryUserRoutes(container.recovery, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(recoveryAdminRoutes(container.recovery, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(notificationUserRoutes(container.notifications));
  await app.register(notificationAdminRoutes(container.notifications, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(auditRoutes(container.audit, container.auditVerdicts));
  await app.register(adminAccountRoutes(container.setup, config.AUTH_RATE_LIMIT_PER_MINUTE));
  await app.register(maintenanceRoutes(container.maintenance));
  await app.register(healthRoutes({ health: container.health, metrics: container.metrics, metricsToken: config.METRICS_TOKEN }));

  registerSpa(app, config.WEB_DIST_DIR);
  return app;
}

/** The built SPA from the same process and port; unknown non-API GETs get index.html. */
function registerSpa(app: FastifyInstance, distDir: string) {
  const hasSpa = existsSync(path.join(distDir, 'index.html'));
  if (hasSpa) {
    // wildcard: files are looked up per request, so a rebuilt SPA's new asset names are served
    // without a restart; a missing file falls through to the not-found handler below.
    app.register(fastifyStatic, {
      root: distDir,
      wildcard: true,
      index: false,
      maxAge: '1h',
      immutable: false,
      // A dotfile in the build (an .env copied in by mistake) is never served: 404 like a missing file.
      dotfiles: 'ignore',
      // `/` is the SPA's route, not a directory listing: let it fall through to index.html.
      allowedPath: (p) => p !== '/',
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const isApi = request.url.startsWith('/api/') || request.url.startsWith('/admin/api/') || request.url === '/api';
    const wantsHtml = request.method === 'GET' && (request.headers.accept ?? '').includes('text/html');
    if (!isApi && hasSpa && wantsHtml) {
      return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').sendFile('index.html');
    }
    if (!isApi && !hasSpa && wantsHtml && request.url === '/') {
      return reply
        .type('text/plain; charset=utf-8')
        .send('Keyturn API is running, but the web app is not built. Run `pnpm start` from the repository root (it builds apps/web).');
    }
    return sendError(reply, request, 'NOT_FOUND', 'Not found.');
  });
}
