import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AppError, ERROR_STATUS, type ErrorBody, type ErrorCode } from '@keyturn/shared';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { sqlStateOf } from '../db/retry';
import { loggable } from '../lib/loggable';

export function sendError(reply: FastifyReply, request: FastifyRequest, code: ErrorCode, message: string, details?: unknown) {
  const body: ErrorBody = { error: { code, message, requestId: String(request.id), ...(details === undefined ? {} : { details }) } };
  return reply.code(ERROR_STATUS[code]).header('cache-control', 'no-store').type('application/json; charset=utf-8').send(body);
}

/** Fastify's own error codes mapped onto ours; anything unknown is a generic 500. */
const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'The request body is too large.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'Send JSON with Content-Type: application/json.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['VALIDATION_FAILED', 'The Content-Length header does not match the body.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['VALIDATION_FAILED', 'The request body is empty; send a JSON object.'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['VALIDATION_FAILED', 'The request body is not valid JSON.'],
  FST_ERR_CTP_INSTANCE_ALREADY_STARTED: ['INTERNAL', 'Something went wrong on our side.'],
};

/**
 * The security event for refused input (RELIABILITY A1): which request, why, and the names of
 * the offending fields, never their values.
 */
function inputRejected(request: FastifyRequest, code: ErrorCode, fields?: string[]) {
  request.log.warn({ securityEvent: 'input_rejected', code, ...(fields ? { fields } : {}) }, 'request refused: invalid input');
}

export function registerErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof AppError) {
      // 429 and 503 say when to come back, as a header too.
      const s = (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
      if (s && (err.code === 'RATE_LIMITED' || err.code === 'UNAVAILABLE')) reply.header('retry-after', String(s));
      if (err.status >= 500) request.log.error({ err: loggable(err) }, 'service error');
      return sendError(reply, request, err.code, err.message, err.details);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) => ({
        field: [err.validationContext, ...String(v.instancePath ?? '').split('/').filter(Boolean)].join('.'),
        message: v.message,
      }));
      inputRejected(request, 'VALIDATION_FAILED', details.map((d) => d.field));
      return sendError(reply, request, 'VALIDATION_FAILED', 'Some fields are missing or not valid.', details);
    }
    if (isResponseSerializationError(err)) {
      request.log.error({ err: loggable(err) }, 'response did not match its schema');
      return sendError(reply, request, 'INTERNAL', 'Something went wrong on our side.');
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (mapped) {
      if (mapped[0] !== 'INTERNAL') inputRejected(request, mapped[0]);
      return sendError(reply, request, mapped[0], mapped[1]);
    }
    if (err instanceof SyntaxError || err.statusCode === 400) {
      // Body parser refusals: bad JSON, prototype poisoning (__proto__ / constructor.prototype).
      inputRejected(request, 'VALIDATION_FAILED');
      return sendError(reply, request, 'VALIDATION_FAILED', 'The request body was refused: send a plain JSON object.');
    }
    if (err.statusCode === 429) return sendError(reply, request, 'RATE_LIMITED', 'Too many requests. Slow down and try again shortly.');
    if (err.statusCode === 413) return sendError(reply, request, 'PAYLOAD_TOO_LARGE', 'The request body is too large.');
    if (err.statusCode === 415) return sendError(reply, request, 'UNSUPPORTED_MEDIA_TYPE', 'Send JSON with Content-Type: application/json.');
    // The static file servers (the SPA's, the API docs') refuse directories, non-canonical and
    // traversal paths with a 403: a path we do not serve, answered like a missing file (so it
    // tells nothing about which directories exist), never a 500.
    if (err.statusCode === 404 || err.statusCode === 403) return sendError(reply, request, 'NOT_FOUND', 'Not found.');
    // Any other client error a plugin raises (an unsatisfiable Range, a failed If-Match on a
    // static file): the client's doing, so a 4xx in the one body, never a 500.
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, request, 'VALIDATION_FAILED', 'The request was refused: check its headers and URL.');
    }
    // Database unreachable or refusing writes: a fast, generic 503. Drizzle wraps driver errors
    // (DrizzleQueryError), so the SQLSTATE and the driver's message are on err.cause.
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const pgCode = sqlStateOf(err) ?? '';
    // A transaction that lost a deadlock or serialization conflict every time it was retried
    // (db/retry.ts), or a lock it could not get in time: nothing was applied; try again shortly.
    if (/^(40P01|40001|55P03)$/.test(pgCode)) {
      request.log.warn({ err: loggable(err) }, 'transaction conflict after retries');
      reply.header('retry-after', '1');
      return sendError(reply, request, 'UNAVAILABLE', 'The service is busy with a conflicting change. Try again in a moment.', { retryAfterSeconds: 1 });
    }
    const text = `${err.message} ${String(cause?.message ?? '')}`;
    if (/^(08|57P|53)/.test(pgCode) || /ECONNREFUSED|ECONNRESET|Connection terminated|not currently accepting connections|PGlite is closed|timeout exceeded when trying to connect/i.test(text)) {
      request.log.error({ err: loggable(err) }, 'database unavailable');
      return sendError(reply, request, 'UNAVAILABLE', 'The service is temporarily unavailable. Try again shortly.');
    }
    request.log.error({ err: loggable(err) }, 'unhandled error');
    return sendError(reply, request, 'INTERNAL', 'Something went wrong on our side.');
  });
}

/**
 * Fastify's `frameworkErrors`: the router's refusals, before any route or hook runs. A URL that
 * is not valid percent-encoding (`/%zz`) and a path parameter past maxParamLength are the
 * client's doing: a 400 in the one error body, with the security headers every answer carries.
 */
export function frameworkErrors(securityHeaders: Record<string, string>) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(securityHeaders);
    if (err.code === 'FST_ERR_BAD_URL') return sendError(reply, request, 'VALIDATION_FAILED', 'The request URL is not valid: bad percent-encoding.');
    if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, request, 'VALIDATION_FAILED', 'A part of the request URL is too long.');
    request.log.error({ err: loggable(err) }, 'router error');
    return sendError(reply, request, 'INTERNAL', 'Something went wrong on our side.');
  };
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request at
 * all (not HTTP, an unknown method, a request line or headers past the 16 KiB limit, a request
 * that never finished arriving). Answered with the one error body (a fresh request id, logged at
 * debug) and the connection closed, as Node and Fastify do by default.
 */
export function clientErrorHandler(securityHeaders: Record<string, string>) {
  // Fastify calls it bound to the instance: `this.log` is the app's logger.
  return function (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const requestId = randomUUID();
    const message =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? 'The request line or headers are too large.'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'The request did not arrive in time.'
          : 'The request is not valid HTTP.';
    this.log.debug({ reqId: requestId, code: err.code }, 'malformed request refused');
    const body = JSON.stringify({ error: { code: 'VALIDATION_FAILED', message, requestId } } satisfies ErrorBody);
    const headers = { ...securityHeaders, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${ERROR_STATUS.VALIDATION_FAILED} Bad Request\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
    }
    socket.destroy(err);
  };
}
