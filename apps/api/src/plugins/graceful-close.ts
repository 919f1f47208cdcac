import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { sendError } from './error-handler';

/**
 * How the HTTP server drains on `app.close()` (the graceful shutdown, lib/shutdown.ts). Node's own
 * `server.close()` closes keep-alive connections that sit between requests, but not a connection
 * that was opened and has not sent a request yet (a browser's preconnect, a balancer's pool):
 * that one held the old server until the forced exit. So connections are tracked here, and when
 * closing begins:
 *
 * - every connection with no request in flight is closed at once;
 * - a busy one is closed right after its last response (which says `Connection: close`);
 * - a request that still arrives on an open connection gets a 503 in the one error body
 *   (Fastify's own 503 has another shape: return503OnClosing is off in buildApp).
 */
export function registerGracefulClose(app: FastifyInstance): void {
  /** Requests in flight per open connection. */
  const inFlight = new Map<Socket, number>();
  let draining = false;

  app.server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  app.server.on('request', (req, res) => {
    const socket = req.socket;
    const n = inFlight.get(socket);
    if (n === undefined) return; // already closed
    inFlight.set(socket, n + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 0) - 1;
      if (left < 0) return; // the connection closed first
      inFlight.set(socket, left);
      // destroySoon: once what was written is flushed, as Node does after `Connection: close`.
      if (draining && left === 0) socket.destroySoon();
    });
  });

  app.addHook('preClose', (done) => {
    draining = true;
    for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
    done();
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!draining) return;
    reply.header('connection', 'close');
    return sendError(reply, request, 'UNAVAILABLE', 'The server is shutting down. Try again shortly.');
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
}
