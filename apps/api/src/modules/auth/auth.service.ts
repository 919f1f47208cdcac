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
import { type Db, type DbOrTx, isUniqueViolation } from '../../db/client';
import { type secrets, users } from '../../db/schema';
import type { Clock } from '../../lib/clock';
import { createSemaphore } from '../../lib/semaphore';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AmkRepo } from '../setup/amk.repo';
import type { AuthRepo, KeyRow, UserRow } from './auth.repo';
import { csrfTokenFor, type SessionClaims, type TokenSigner } from './tokens';

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
    SESSION_TTL_SECONDS: number;
    LOGIN_MAX_FAILURES: number;
    LOGIN_LOCK_SECONDS: number;
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

export function createAuthService(deps: AuthServiceDeps) {
  const { db, repo, audit, clock, signer, config } = deps;
  const loginKey = (email: string) => `login:${email}`;

  /** A new session row holding the DEK under a fresh session key; returns the client's token. */
  async function openSession(tx: DbOrTx, user: UserRow, keyVersion: number, dek: Buffer): Promise<Omit<Session, 'user'> & { sessionId: string }> {
    const sessionId = randomUUID();
    const sessionKey = randomBytes(32);
    const expiresAt = await repo.insertSession(
      tx,
      { id: sessionId, userId: user.id, keyVersion, wrappedDek: wrapForSession(sessionKey, dek, sessionId, user.id, keyVersion) },
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

  const kdfSlots = createSemaphore(config.KDF_MAX_CONCURRENCY);
  /** Every argon2id derivation goes through here: counted, and at most KDF_MAX_CONCURRENCY at once. */
  function kdfCost<T>(derive: () => Promise<T>): Promise<T> {
    deps.onKdf?.();
    return kdfSlots.run(derive);
  }

  return {
    openSession,
    /** For argon2 derivations made elsewhere (setup, rotation): the same metric and the same slots. */
    kdfCost,

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
            details: { keyVersion: 1, sessionId: s.sessionId },
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
      const key = loginKey(body.email);
      // Two independent reads, both prepared, in parallel: one round trip before the argon2 work.
      const [throttle, found] = await Promise.all([repo.throttleState(db, key, clock), repo.userByEmail(db, body.email)]);
      const blocked = throttle.blockedFor;
      if (blocked > 0) {
        await audit.recordDetached(ctx, { action: 'auth.login', outcome: 'denied', target: `email:${body.email}`, details: { reason: 'throttled' } });
        throw new AppError('RATE_LIMITED', 'Too many failed sign-ins for this account. Try again later.', { retryAfterSeconds: blocked });
      }
      const fail = async (reason: string): Promise<never> => {
        await repo.throttleFail(db, key, config.LOGIN_MAX_FAILURES, config.LOGIN_LOCK_SECONDS, clock.now());
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
        return fail(found ? 'disabled' : 'unknown_email');
      }
      const unlocked = await kdfCost(() => unlockKeyMaterial(found.user.id, body.password, found.keys));
      if (!unlocked.ok) return fail(unlocked.reason === 'WRONG_PASSWORD' ? 'wrong_password' : 'key_check_failed');
      try {
        const s = await db.transaction(async (tx) => {
          const s = await openSession(tx, found.user, found.keys.keyVersion, unlocked.dek);
          // A success clears the failure count; with no count there is nothing to clear.
          if (throttle.exists) await repo.throttleReset(tx, key);
          await audit.record(tx, { ...ctx, actor: { id: found.user.id, email: found.user.email, role: found.user.role } }, {
            action: 'auth.login',
            outcome: 'success',
            target: `user:${found.user.id}`,
            details: { sessionId: s.sessionId },
          });
          return s;
        });
        return { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt, user: toUser(found.user, found.keys) };
      } finally {
        wipe(unlocked.dek, unlocked.kek);
      }
    },

    async logout(ctx: RequestCtx, auth: AuthContext): Promise<void> {
      await db.transaction(async (tx) => {
        await repo.revokeSession(tx, auth.sessionId, 'logout', clock.now());
        await audit.record(tx, ctx, { action: 'auth.logout', outcome: 'success', target: `user:${auth.userId}`, details: { sessionId: auth.sessionId } });
      });
    },

    /**
     * Resolve a bearer or cookie token to a live session, or null (→ 401). With `prefetchSecretId`,
     * the same statement also fetches that secret of the session's user (the hot read path: one
     * round trip instead of two); it is returned only with a live session.
     */
    async resolve(token: string, prefetchSecretId?: string): Promise<(AuthContext & { prefetched?: PrefetchedSecret }) | null> {
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
      if (!r || r.user.id !== claims.sub) return null;
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

    /**
     * Fresh re-authentication of an admin (approve, finalize, restore): verify the password in
     * this request, throttled per admin. Returns the admin's KEK for the AMK unwrap; caller wipes.
     */
    async reauthenticateAdmin(ctx: RequestCtx, auth: AuthContext, password: string, maxFailures: number, action: string): Promise<Buffer> {
      const key = `admin-reauth:${auth.userId}`;
      const throttle = await repo.throttleState(db, key, clock);
      const blocked = throttle.blockedFor;
      if (blocked > 0) {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: `user:${auth.userId}`, details: { reason: 'reauth_throttled' } });
        throw new AppError('RATE_LIMITED', 'Too many wrong admin passwords. Try again later.', { retryAfterSeconds: blocked });
      }
      const r = await repo.findUserWithKeys(db, auth.userId);
      if (r?.user.role !== 'admin') throw new AppError('FORBIDDEN', 'This needs an administrator.');
      const unlocked = await kdfCost(() => unlockKeyMaterial(r.user.id, password, r.keys));
      if (!unlocked.ok) {
        await repo.throttleFail(db, key, maxFailures, config.LOGIN_LOCK_SECONDS, clock.now());
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: `user:${auth.userId}`, details: { reason: 'admin_reauth_failed' } });
        throw new AppError('ADMIN_REAUTH_FAILED', 'The admin password is incorrect.');
      }
      if (throttle.exists) await repo.throttleReset(db, key);
      wipe(unlocked.dek);
      return unlocked.kek;
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
