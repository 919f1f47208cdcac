import { randomBytes, randomUUID } from 'node:crypto';
import { AppError, type LoginBody, type RegisterBody, type Session, type User } from '@keyturn/shared';
import {
  deriveMaster,
  type KdfParams,
  newKeyMaterial,
  unlockKeyMaterial,
  unwrapForSession,
  wipe,
  wrapForSession,
} from '@keyturn/shared/crypto';
import { type Db, type DbOrTx, isUniqueViolation, userKeyGate } from '../../db/client';
import { type secrets, users } from '../../db/schema';
import type { Clock } from '../../lib/clock';
import { createSemaphore } from '../../lib/semaphore';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AmkRepo } from '../setup/amk.repo';
import type { AuthRepo, KeyRow, UserRow } from './auth.repo';
import { csrfTokenFor, type SessionClaims, sessionKeyHash, sessionKeyMatches, sessionRefFor, type TokenSigner } from './tokens';

export interface AuthServiceDeps {
  db: Db;
  repo: AuthRepo;
  amkRepo: AmkRepo;
  audit: AuditService;
  clock: Clock;
  signer: TokenSigner;
  config: {
    jwtSecret: string;
    kdf: KdfParams;
    KDF_MAX_CONCURRENCY: number;
    KDF_MAX_QUEUE: number;
    SESSION_TTL_SECONDS: number;
    LOGIN_MAX_FAILURES: number;
    LOGIN_LOCK_SECONDS: number;
    ADMIN_REAUTH_MAX_FAILURES: number;
  };
  /** Counts argon2 derivations (metrics, and the tests that prove none happen on bad input). */
  onKdf?: () => void;
}

/** The resolved caller of a request. The session key stays in memory for this request only. */
export interface AuthContext {
  userId: string;
  email: string;
  role: 'user' | 'admin';
  sessionId: string;
  /** The key version this session's DEK belongs to. */
  keyVersion: number;
  currentKeyVersion: number;
  sessionKey: Buffer;
  wrappedDek: Buffer;
  expiresAt: Date;
}

/** A throttle's cap and the message of its 429 (README A5). */
export interface ThrottleLimit {
  max: number;
  message: string;
  /** The answer when only attempts in flight fill the cap (default: 429, retry in a second). */
  busy?: () => AppError;
}

/** A reserved guess; settle it exactly once (later calls do nothing). */
export interface ThrottledAttempt {
  failed(): Promise<void>;
  /** In the success's own transaction when one is given (call rolledBack if that transaction fails). */
  succeeded(tx?: DbOrTx): Promise<void>;
  abandoned(): Promise<void>;
  /** The transaction that settled the attempt rolled back: it is unsettled again. */
  rolledBack(): void;
}

/** A secret read together with the session (see `resolve`'s prefetch): the row, or null if none. */
export type PrefetchedSecret = typeof secrets.$inferSelect | null;

export const toUser = (u: UserRow, k: Pick<KeyRow, 'keyVersion'>): User => ({
  id: u.id,
  email: u.email,
  role: u.role,
  keyVersion: k.keyVersion,
  createdAt: u.createdAt.toISOString(),
});

const DUMMY_SALT = randomBytes(16);
/** resolve's answer for a live session whose key version is no longer the user's (README A9). */
export const STALE = Symbol('stale session');

export function createAuthService(deps: AuthServiceDeps) {
  const { db, repo, audit, clock, signer, config } = deps;
  const loginKey = (email: string) => `login:${email}`;
  const sessionRef = (sid: string) => sessionRefFor(config.jwtSecret, sid);

  /** A new session row holding the DEK under a fresh session key; returns the client's token. */
  async function openSession(tx: DbOrTx, user: UserRow, keyVersion: number, dek: Buffer): Promise<Omit<Session, 'user'> & { sessionId: string }> {
    const sessionId = randomUUID();
    const sessionKey = randomBytes(32);
    const expiresAt = await repo.insertSession(
      tx,
      { id: sessionId, userId: user.id, keyVersion, wrappedDek: wrapForSession(sessionKey, dek, sessionId, user.id, keyVersion), keyHash: sessionKeyHash(sessionId, sessionKey) },
      config.SESSION_TTL_SECONDS,
      clock.now(),
    );
    const claims: SessionClaims = { sid: sessionId, sk: sessionKey.toString('base64url'), sub: user.id };
    wipe(sessionKey);
    return {
      sessionId,
      token: signer.sign(claims, config.SESSION_TTL_SECONDS),
      csrfToken: csrfTokenFor(config.jwtSecret, sessionId),
      expiresAt: expiresAt.toISOString(),
    };
  }

  const kdfSlots = createSemaphore(config.KDF_MAX_CONCURRENCY, config.KDF_MAX_QUEUE);
  /**
   * Every argon2id derivation goes through here (README A6): counted, at most KDF_MAX_CONCURRENCY
   * at once, at most KDF_MAX_QUEUE waiting; past that, 503 with Retry-After at once instead of an
   * unbounded wait (a throttle slot reserved for the attempt is given back by its caller).
   */
  async function kdfCost<T>(derive: () => Promise<T>): Promise<T> {
    if (!kdfSlots.admits) throw kdfBusy();
    deps.onKdf?.();
    return kdfSlots.run(derive);
  }
  const kdfBusy = () =>
    new AppError('UNAVAILABLE', 'The server is busy checking other passwords. Try again in a moment.', { retryAfterSeconds: 1, reason: 'kdf_queue_full' });

  /**
   * Reserve one guess under a throttle key before its argon2 work (README A5). Refused while the
   * key is blocked (429 with the block's remainder, after `refused`, e.g. an audit), or while
   * attempts still in flight fill its slots: then `limit.busy` if given (e.g. 409 LOST_RACE for
   * parallel executes of one rotation), else 429 with Retry-After 1. The caller settles the
   * returned attempt: failed (counted), succeeded (slot back, failures cleared) or abandoned (slot
   * back, nothing counted). An attempt a crash never settles keeps its slot until no attempt was
   * reserved for a whole window (auth.repo throttleReserve): it fails closed.
   */
  async function reserveAttempt(key: string, limit: ThrottleLimit, refused: () => Promise<unknown>): Promise<ThrottledAttempt> {
    const r = await repo.throttleReserve(db, key, limit.max, config.LOGIN_LOCK_SECONDS, clock.now());
    if (!r.reserved) {
      if (r.blockedFor === 0 && limit.busy) throw limit.busy();
      await refused();
      if (r.blockedFor === 0) {
        throw new AppError('RATE_LIMITED', 'Other attempts are being checked right now. Try again in a moment.', { retryAfterSeconds: 1 });
      }
      throw new AppError('RATE_LIMITED', limit.message, { retryAfterSeconds: r.blockedFor });
    }
    let settled = false;
    const settle = async (outcome: 'failure' | 'success' | 'abandon', tx?: DbOrTx) => {
      // Inside a transaction it always runs: a retried transaction (db/retry.ts) runs it again,
      // and only the run that commits counts. Outside, once, and only counted as done once the
      // statement succeeded (a failed settle leaves the final `abandoned` to give the slot back).
      if (settled && !tx) return;
      await repo.throttleSettle(tx ?? db, key, outcome, limit.max, config.LOGIN_LOCK_SECONDS, clock.now());
      settled = true;
    };
    return {
      failed: () => settle('failure'),
      succeeded: (tx) => settle('success', tx),
      abandoned: () => settle('abandon'),
      rolledBack: () => {
        settled = false;
      },
    };
  }

  const loginLimit = (): ThrottleLimit => ({ max: config.LOGIN_MAX_FAILURES, message: 'Too many failed sign-ins for this account. Try again later.' });

  /**
   * Fresh re-authentication of an admin (approve, finalize, restore, adding an admin): the
   * password verified in this request, through the admin re-authentication throttle (one
   * counter per admin, README A5). Returns the admin's KEK for the AMK unwrap; the caller wipes it.
   */
  async function reauthenticateAdmin(ctx: RequestCtx, adminId: string, password: string, action: string): Promise<Buffer> {
    const target = `user:${adminId}`;
    const attempt = await reserveAttempt(
      `admin-reauth:${adminId}`,
      { max: config.ADMIN_REAUTH_MAX_FAILURES, message: 'Too many wrong admin passwords. Try again later.' },
      () => audit.recordDetached(ctx, { action, outcome: 'denied', target, details: { reason: 'reauth_throttled' } }),
    );
    try {
      const r = await repo.findUserWithKeys(db, adminId);
      if (r?.user.role !== 'admin' || r.user.disabled) throw new AppError('FORBIDDEN', 'This needs an administrator.');
      const unlocked = await kdfCost(() => unlockKeyMaterial(r.user.id, password, r.keys));
      if (!unlocked.ok) {
        await attempt.failed();
        await audit.recordDetached(ctx, { action, outcome: 'denied', target, details: { reason: 'admin_reauth_failed' } });
        throw new AppError('ADMIN_REAUTH_FAILED', 'The admin password is incorrect.');
      }
      await attempt.succeeded();
      wipe(unlocked.dek);
      return unlocked.kek;
    } finally {
      await attempt.abandoned();
    }
  }

  return {
    openSession,
    sessionRef,
    /** For argon2 derivations made elsewhere (setup, rotation): the same metric and the same slots. */
    kdfCost,
    reserveAttempt,
    loginLimit,
    reauthenticateAdmin,

    /** Create a user with key version 1 and a pending A-DEK (no admin needed); sign them in. */
    async register(ctx: RequestCtx, body: RegisterBody) {
      const amk = await deps.amkRepo.get(db);
      if (!amk) throw new AppError('SETUP_REQUIRED', 'Keyturn is not set up yet: an administrator must complete first-run setup.');
      const userId = randomUUID();
      const { material, dek, kek } = await kdfCost(() =>
        newKeyMaterial({ userId, password: body.password, keyVersion: 1, kdf: config.kdf, amkPublic: amk.publicKey }),
      );
      const taken = () => new AppError('EMAIL_TAKEN', 'An account with this email already exists.');
      try {
        return await db.transaction(async (tx) => {
          if (await repo.findUserWithKeysByEmail(tx, body.email)) throw taken();
          const [user] = await tx.insert(users).values({ id: userId, email: body.email, role: 'user' }).returning();
          await repo.insertKeys(tx, user!.id, material);
          const s = await openSession(tx, user!, 1, dek);
          await audit.record(tx, { ...ctx, actor: { id: user!.id, email: user!.email, role: 'user' } }, {
            action: 'user.registered',
            outcome: 'success',
            target: `user:${user!.id}`,
            details: { keyVersion: 1, session: sessionRef(s.sessionId) },
          });
          return { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt, user: toUser(user!, { keyVersion: 1 }) };
        });
      } catch (e) {
        // Two registrations racing for one email: the unique index settles it.
        if (isUniqueViolation(e)) throw taken();
        throw e;
      } finally {
        wipe(dek, kek);
      }
    },

    /** Unknown email and wrong password answer the same, after the same argon2 work. */
    async login(ctx: RequestCtx, body: LoginBody): Promise<Session> {
      // The attempt is reserved before the argon2 work (README A5), alongside the user's read; if
      // the read fails, the reserved slot is given back before the error goes on.
      const [reserved, read] = await Promise.allSettled([
        reserveAttempt(loginKey(body.email), loginLimit(), () =>
          audit.recordDetached(ctx, { action: 'auth.login', outcome: 'denied', target: `email:${body.email}`, details: { reason: 'throttled' } }),
        ),
        repo.userByEmail(db, body.email),
      ]);
      if (reserved.status === 'rejected') throw reserved.reason;
      const attempt = reserved.value;
      if (read.status === 'rejected') {
        await attempt.abandoned();
        throw read.reason;
      }
      const found = read.value;
      try {
        const fail = async (reason: string): Promise<never> => {
          await attempt.failed();
          await audit.recordDetached(ctx, {
            action: 'auth.login',
            outcome: 'failure',
            target: `email:${body.email}`,
            actor: found ? { id: found.user.id, email: found.user.email, role: found.user.role } : { email: body.email },
            details: { reason },
          });
          throw new AppError('INVALID_CREDENTIALS', 'Email or password is incorrect.');
        };
        if (!found || found.user.disabled) {
          wipe(await kdfCost(() => deriveMaster(body.password, DUMMY_SALT, config.kdf)));
          return await fail(found ? 'disabled' : 'unknown_email');
        }
        const unlocked = await kdfCost(() => unlockKeyMaterial(found.user.id, body.password, found.keys));
        if (!unlocked.ok) return await fail(unlocked.reason === 'WRONG_PASSWORD' ? 'wrong_password' : 'key_check_failed');
        try {
          const s = await db.transaction(async (tx) => {
            // The key row the password unlocked must still be the user's keys (README A9): a
            // rotation or restore that committed during the derivation revoked every session it
            // saw, and this one would be for a dead key version.
            await tx.execute(userKeyGate(found.user.id, 'shared'));
            const now = await repo.findUserWithKeys(tx, found.user.id, 'share');
            if (!now || now.keys.keyVersion !== found.keys.keyVersion || !now.keys.wrappedDek.equals(found.keys.wrappedDek)) {
              throw new AppError('LOST_RACE', 'Your keys changed while you were signing in. Sign in again.');
            }
            const s = await openSession(tx, found.user, found.keys.keyVersion, unlocked.dek);
            await attempt.succeeded(tx);
            await audit.record(tx, { ...ctx, actor: { id: found.user.id, email: found.user.email, role: found.user.role } }, {
              action: 'auth.login',
              outcome: 'success',
              target: `user:${found.user.id}`,
              details: { session: sessionRef(s.sessionId) },
            });
            return s;
          }).catch((e: unknown) => {
            attempt.rolledBack();
            throw e;
          });
          return { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt, user: toUser(found.user, found.keys) };
        } finally {
          wipe(unlocked.dek, unlocked.kek);
        }
      } finally {
        // Anything that ended before a verdict (the race above, a database error) gives the slot back.
        await attempt.abandoned();
      }
    },

    async logout(ctx: RequestCtx, auth: AuthContext): Promise<void> {
      await db.transaction(async (tx) => {
        await repo.revokeSession(tx, auth.sessionId, 'logout', clock.now());
        await audit.record(tx, ctx, { action: 'auth.logout', outcome: 'success', target: `user:${auth.userId}`, details: { session: sessionRef(auth.sessionId) } });
      });
    },

    /**
     * Resolve a bearer or cookie token to a live session, or null (→ 401). With `prefetchSecretId`,
     * the same statement also fetches that secret of the session's user (the hot read path: one
     * round trip instead of two); it is returned only with a live session.
     */
    async resolve(token: string, prefetchSecretId?: string): Promise<(AuthContext & { prefetched?: PrefetchedSecret }) | null | typeof STALE> {
      let claims: SessionClaims;
      try {
        claims = signer.verify(token);
      } catch {
        return null;
      }
      if (typeof claims.sid !== 'string' || typeof claims.sk !== 'string' || !/^[0-9a-f-]{36}$/i.test(claims.sid)) return null;
      const sessionKey = Buffer.from(claims.sk, 'base64url');
      if (sessionKey.length !== 32) return null;
      let prefetched: PrefetchedSecret | undefined;
      let r: Awaited<ReturnType<AuthRepo['findLiveSession']>>;
      if (prefetchSecretId === undefined) r = await repo.findLiveSession(db, claims.sid, clock);
      else {
        const w = await repo.findLiveSessionWithSecret(db, claims.sid, prefetchSecretId, clock);
        r = w;
        prefetched = w?.secret ?? null;
      }
      // The token must carry the session's key (README A8): a forged token with a known session
      // id and the JWT secret but not the key is refused like any unknown session.
      if (!r || r.user.id !== claims.sub || !sessionKeyMatches(r.session.id, sessionKey, r.session.keyHash)) {
        wipe(sessionKey);
        return null;
      }
      // A session for a key version that is no longer current (README A9) opens nothing and is
      // refused on every route, not only where a DEK is needed.
      if (r.session.keyVersion !== r.currentKeyVersion) {
        wipe(sessionKey);
        return STALE;
      }
      const a: AuthContext = {
        userId: r.user.id,
        email: r.user.email,
        role: r.user.role,
        sessionId: r.session.id,
        keyVersion: r.session.keyVersion,
        currentKeyVersion: r.currentKeyVersion,
        sessionKey,
        wrappedDek: r.session.wrappedDek,
        expiresAt: r.session.expiresAt,
      };
      return prefetched === undefined ? a : { ...a, prefetched };
    },

    /** The session's DEK, opened with the key only the client's token carries. Caller wipes it. */
    sessionDek(auth: AuthContext): Buffer {
      try {
        return unwrapForSession(auth.sessionKey, auth.wrappedDek, auth.sessionId, auth.userId, auth.keyVersion);
      } catch {
        throw new AppError('UNAUTHENTICATED', 'Your session is no longer valid. Please sign in again.');
      }
    },

    async me(auth: AuthContext) {
      const r = await repo.findUserWithKeys(db, auth.userId);
      if (!r) throw new AppError('UNAUTHENTICATED', 'Your session is no longer valid. Please sign in again.');
      return {
        user: toUser(r.user, r.keys),
        session: {
          id: auth.sessionId,
          keyVersion: auth.keyVersion,
          expiresAt: auth.expiresAt.toISOString(),
          csrfToken: csrfTokenFor(config.jwtSecret, auth.sessionId),
        },
      };
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
