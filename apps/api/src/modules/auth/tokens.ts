import { createHmac, timingSafeEqual } from 'node:crypto';

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
