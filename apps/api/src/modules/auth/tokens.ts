import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What a session token carries: the session id and the per-session key (DESIGN §2). */
export interface SessionClaims {
  sid: string;
  /** base64url of the 32-byte session key; the database never holds it. */
  sk: string;
  sub: string;
}

export interface TokenSigner {
  sign(claims: SessionClaims, expiresInSeconds: number): string;
  /** Throws on any signature, algorithm, expiry or shape problem. */
  verify(token: string): SessionClaims;
}

/** The CSRF token of a session: an HMAC of its id, so any instance can check it statelessly. */
export function csrfTokenFor(secret: string, sid: string): string {
  return createHmac('sha256', secret).update(`keyturn/csrf/v1|${sid}`).digest('base64url');
}

export function csrfMatches(secret: string, sid: string, given: string): boolean {
  const want = Buffer.from(csrfTokenFor(secret, sid));
  const got = Buffer.from(given);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * What the sessions row keeps of the per-session key (README A8): SHA-256 of the key, bound to
 * the session id. A request proves it holds the key by matching this; the key itself (which
 * opens the session's DEK) is never stored. 256 random bits need no slow hash.
 */
export const sessionKeyHash = (sid: string, sessionKey: Uint8Array): Buffer =>
  createHash('sha256').update(`keyturn/session-key/v1|${sid}|`).update(sessionKey).digest();

export function sessionKeyMatches(sid: string, sessionKey: Uint8Array, stored: Uint8Array | null): boolean {
  if (!stored) return false;
  const h = sessionKeyHash(sid, sessionKey);
  return h.length === stored.length && timingSafeEqual(h, stored);
}

/**
 * How audit details name a session (README A8): an HMAC of its id under the server secret, so
 * events of one session can be correlated without the trail holding the session id, which with
 * the JWT secret would be half of a forged token.
 */
export const sessionRefFor = (secret: string, sid: string): string =>
  createHmac('sha256', secret).update(`keyturn/session-ref/v1|${sid}`).digest('base64url').slice(0, 22);
