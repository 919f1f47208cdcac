/**
 * Helpers shared by the rotation test files (rotation.*.test.ts): the rotation flow through the
 * API, controllable fault hooks, a test clock, and row dumps for byte-for-byte comparisons.
 * Not a test file itself (vitest only picks up *.test.ts).
 */
import type { ApproveResult, RotateResult, RotationToken } from '@keyturn/shared';
import type { RotationHooks } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Database } from '../src/db/client';
import type { Clock } from '../src/lib/clock';
import { api, json, login, queryRows, type Response, type TestUser } from './harness';

export interface AppHandle {
  readonly app: FastifyInstance;
  readonly database: Database;
}

// ---------------------------------------------------------------------------------------------
// the flow through the API

export async function requestRotation(t: AppHandle, user: TestUser, reason = 'routine rotation'): Promise<RotationToken> {
  const res = await api(t.app, user).post('/api/request_key_rotation', { reason });
  expect(res.statusCode, res.body).toBe(201);
  return json<RotationToken>(res);
}

export const approveRes = (t: AppHandle, admin: TestUser, tokenId: string, adminPassword = admin.password) =>
  api(t.app, admin).post(`/admin/api/approve_rotation/${tokenId}`, { adminPassword });

export async function approveRotation(t: AppHandle, admin: TestUser, tokenId: string): Promise<ApproveResult> {
  const res = await approveRes(t, admin, tokenId);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return json<ApproveResult>(res);
}

export const rejectRes = (t: AppHandle, admin: TestUser, tokenId: string, reason = 'not now') =>
  api(t.app, admin).post(`/admin/api/reject_rotation/${tokenId}`, { reason });
export const cancelRes = (t: AppHandle, user: TestUser, tokenId: string) => api(t.app, user).post(`/api/rotation_requests/${tokenId}/cancel`);
export const finalizeRes = (t: AppHandle, admin: TestUser, tokenId: string, adminPassword = admin.password) =>
  api(t.app, admin).post(`/admin/api/finalize_a_dek/${tokenId}`, { adminPassword });
export const restoreRes = (t: AppHandle, admin: TestUser, tokenId: string, adminPassword = admin.password) =>
  api(t.app, admin).post(`/admin/api/restore_rotation/${tokenId}`, { adminPassword });

/** A well-formed temporary password that is not any token's (32 Crockford characters). */
export const FAKE_TEMP_PASSWORD = 'ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345-6789';

export const executeRes = (
  t: AppHandle,
  user: TestUser,
  body: { tokenId: string; tempPassword: string; currentPassword?: string; newPassword?: string },
): Promise<Response> =>
  api(t.app, user).post('/api/rotate_keys_with_token', {
    tokenId: body.tokenId,
    tempPassword: body.tempPassword,
    currentPassword: body.currentPassword ?? user.password,
    ...(body.newPassword === undefined ? {} : { newPassword: body.newPassword }),
  });

/** The user after a successful execute: the new session and (maybe) the new password. */
export function afterRotation(user: TestUser, res: Response, newPassword?: string): TestUser {
  expect(res.statusCode, res.body).toBe(200);
  const r = json<RotateResult>(res);
  return { ...user, token: r.session.token, csrfToken: r.session.csrfToken, password: newPassword ?? user.password };
}

export interface Rotated {
  token: RotationToken;
  approval: ApproveResult;
  result: RotateResult;
  /** The user on the new session, with the new password if one was given. */
  user: TestUser;
}

/** request → approve → execute, all expected to succeed. */
export async function rotate(t: AppHandle, admin: TestUser, user: TestUser, opts: { newPassword?: string } = {}): Promise<Rotated> {
  const token = await requestRotation(t, user);
  const approval = await approveRotation(t, admin, token.id);
  const res = await executeRes(t, user, { tokenId: token.id, tempPassword: approval.tempPassword, ...opts });
  const next = afterRotation(user, res, opts.newPassword);
  return { token, approval, result: json<RotateResult>(res), user: next };
}

/** Every secret of the user as name → value, read through the API (so every row must decrypt). */
export async function readVault(app: FastifyInstance, user: TestUser): Promise<Record<string, string>> {
  const list = await api(app, user).get('/api/secrets');
  expect(list.statusCode, list.body).toBe(200);
  const out: Record<string, string> = {};
  for (const item of json<{ items: { id: string }[] }>(list).items) {
    const res = await api(app, user).get(`/api/secrets/${item.id}`);
    expect(res.statusCode, res.body).toBe(200);
    const s = json<{ name: string; value: string }>(res);
    out[s.name] = s.value;
  }
  return out;
}

/** Logs in (fresh session) and reads the whole vault: proves the password opens every secret. */
export async function loginAndReadVault(app: FastifyInstance, user: TestUser, password = user.password) {
  const fresh = await login(app, user.email, password);
  return { user: fresh, vault: await readVault(app, fresh) };
}

export async function loginStatus(app: FastifyInstance, email: string, password: string): Promise<number> {
  return (await api(app).post('/api/auth/login', { email, password })).statusCode;
}

// ---------------------------------------------------------------------------------------------
// rows

function render(v: unknown): unknown {
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(render);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(x)]));
  return v;
}

/** Rows of a query, rendered to one comparable string (bytea as hex, dates as ISO). */
export async function dump(database: Database, query: string): Promise<string> {
  const rows = await queryRows(database, query);
  return JSON.stringify(rows.map(render), null, 1);
}

export const dumpSecrets = (database: Database, userId: string) => dump(database, `select * from secrets where user_id = '${userId}' order by id`);
export const dumpAllSecrets = (database: Database) => dump(database, 'select * from secrets order by id');
export const dumpUserKeys = (database: Database, userId: string) => dump(database, `select * from user_keys where user_id = '${userId}'`);
export const dumpToken = (database: Database, tokenId: string) => dump(database, `select * from rotation_tokens where id = '${tokenId}'`);

export async function tokenRow(database: Database, tokenId: string) {
  const [r] = await queryRows<{
    status: string;
    failed_attempts: number;
    failure_reason: string | null;
    temp_hash: Uint8Array | null;
    to_key_version: number | null;
    secrets_reencrypted: number | null;
    decision_note: string | null;
    locked_at: Date | string | null;
    self_approved: boolean;
  }>(database, `select * from rotation_tokens where id = '${tokenId}'`);
  return r;
}

export async function keyVersion(database: Database, userId: string): Promise<number> {
  const [r] = await queryRows<{ key_version: number }>(database, `select key_version from user_keys where user_id = '${userId}'`);
  return Number(r?.key_version);
}

/** I6: every user has an escrow copy (pending or final) of the current DEK. */
export async function usersWithoutEscrow(database: Database): Promise<number> {
  const [r] = await queryRows<{ n: number }>(database, 'select count(*)::int as n from user_keys where adek_pending is null and adek_final is null');
  return Number(r?.n);
}

export interface AuditRow {
  seq: number;
  at_text: string;
  actor_id: string | null;
  actor_email: string | null;
  role: string;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string | null;
  client_address: string | null;
  details: Record<string, unknown>;
  hash: string;
  prev_hash: string;
}

export async function auditHead(database: Database): Promise<number> {
  const [r] = await queryRows<{ n: number | null }>(database, 'select max(seq)::int as n from audit_events');
  return Number(r?.n ?? 0);
}

export async function auditSince(database: Database, afterSeq: number): Promise<AuditRow[]> {
  const rows = await queryRows<AuditRow>(database, `select * from audit_events where seq > ${afterSeq} order by seq`);
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

export async function auditFor(database: Database, target: string): Promise<AuditRow[]> {
  const rows = await queryRows<AuditRow>(database, `select * from audit_events where target = '${target}' order by seq`);
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** The database's clock as the app sees it (through the injected clock). */
export async function appNow(t: AppHandle): Promise<Date> {
  return t.app.container.rotation.dbNow();
}

export async function runSql(database: Database, text: string): Promise<void> {
  await database.rows(sql.raw(text));
}

// ---------------------------------------------------------------------------------------------
// a clock tests can move or freeze

/**
 * Like lib/clock's offsetClock (the database's now() plus a movable offset), and it can also be
 * frozen at one instant, so boundary tests (expires_at ± 1 s) do not depend on how long the
 * request in between took.
 */
export function testClock(): Clock & { offsetMs: number; frozenAt: Date | null; reset(): void } {
  const c = {
    offsetMs: 0,
    frozenAt: null as Date | null,
    now: () =>
      c.frozenAt
        ? sql`(${c.frozenAt.toISOString()}::timestamptz)`
        : sql`(now() + (${c.offsetMs}::bigint * interval '1 millisecond'))`,
    params: () => ({ clockAt: c.frozenAt ? c.frozenAt.toISOString() : null, clockOffsetMs: c.offsetMs }),
    reset() {
      c.offsetMs = 0;
      c.frozenAt = null;
    },
  };
  return c;
}

// ---------------------------------------------------------------------------------------------
// fault hooks

export type Stage = keyof RotationHooks;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Point {
  stage: Stage;
  index?: number;
}
const matches = (p: Point, stage: Stage, index?: number) => p.stage === stage && (p.index === undefined || p.index === index);

export interface Pause {
  /** Resolves once the rotation reached the point. */
  reached: Promise<void>;
  /** Let it go on, or make the hook throw `error`. */
  release(error?: Error): void;
}

/**
 * Fault hooks armed per token id: throw at a stage, or pause there until released. Hooks for
 * other tokens pass straight through, so one app serves every test of a file.
 */
export function faultHooks() {
  const faults = new Map<string, Point & { error: Error }>();
  const pauses = new Map<string, Point & { reached: Deferred<void>; go: Deferred<void> }>();
  const seen: { tokenId: string; stage: Stage; index?: number }[] = [];

  const at = async (stage: Stage, tokenId: string, index?: number) => {
    seen.push({ tokenId, stage, ...(index === undefined ? {} : { index }) });
    const p = pauses.get(tokenId);
    if (p && matches(p, stage, index)) {
      pauses.delete(tokenId);
      p.reached.resolve();
      await p.go.promise;
    }
    const f = faults.get(tokenId);
    if (f && matches(f, stage, index)) {
      faults.delete(tokenId);
      throw f.error;
    }
  };

  const hooks: RotationHooks = {
    afterClaim: (id) => at('afterClaim', id),
    afterLock: (id) => at('afterLock', id),
    afterBackup: (id) => at('afterBackup', id),
    afterBatch: (id, index) => at('afterBatch', id, index),
    beforeCommit: (id) => at('beforeCommit', id),
    afterCommit: (id) => at('afterCommit', id),
  };

  return {
    hooks,
    seen,
    failAt(tokenId: string, stage: Stage, index?: number, error = new Error(`injected fault at ${stage}`)) {
      faults.set(tokenId, { stage, ...(index === undefined ? {} : { index }), error });
    },
    pauseAt(tokenId: string, stage: Stage, index?: number): Pause {
      const reached = deferred<void>();
      const go = deferred<void>();
      go.promise.catch(() => {});
      pauses.set(tokenId, { stage, ...(index === undefined ? {} : { index }), reached, go });
      return { reached: reached.promise, release: (error) => (error ? go.reject(error) : go.resolve()) };
    },
  };
}
