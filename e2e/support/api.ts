import { randomBytes } from 'node:crypto';
import type { APIRequestContext, APIResponse } from '@playwright/test';
// Type-only: erased at run time, so e2e needs no dependency on the shared package to use its
// contract types (z.infer of the zod schemas).
import type {
  ApproveResult,
  AuditEvent,
  ChangePasswordResult,
  Delivery,
  DeliveryStatus,
  InboxItem,
  InboxList,
  RecoveryApproved,
  RecoveryCompleted,
  RecoveryNotice,
  RecoveryRequested,
  RecoveryRequestView,
  RecoveryStatus,
  RotateResult,
  RotationStatus,
  RotationToken,
  Secret,
  SecretMeta,
  Session,
} from '../../packages/shared/src/index';
import { serverInfo } from './env';

export type {
  ApproveResult,
  AuditEvent,
  ChangePasswordResult,
  Delivery,
  DeliveryStatus,
  InboxItem,
  InboxList,
  RecoveryApproved,
  RecoveryCompleted,
  RecoveryNotice,
  RecoveryRequested,
  RecoveryRequestView,
  RecoveryStatus,
  RotateResult,
  RotationStatus,
  RotationToken,
  Secret,
  SecretMeta,
  Session,
};

/**
 * API shortcuts so UI tests can arrange state fast. They speak the contract in
 * packages/shared/src/schemas with `Authorization: Bearer <token>` (no cookie, no CSRF).
 * Pass Playwright's `request` fixture (baseURL already set) or any APIRequestContext.
 */

export interface Credentials {
  email: string;
  password: string;
}

export interface LoggedIn extends Credentials {
  session: Session;
  /** Headers for authenticated calls with this session. */
  auth: { authorization: string };
}

const suffix = () => `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** A unique, valid address (`.test` is reserved: nothing is ever sent anywhere). */
export const uniqueEmail = (prefix = 'user'): string => `${prefix}-${suffix()}@keyturn.test`;

/** A password the server accepts: ≥ 12 characters and not on the common list. */
export const strongPassword = (): string => `e2e ${randomBytes(12).toString('base64url')} pw`;

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Fails with the API's error body in the message when the status is not the expected one. */
export async function expectStatus(res: APIResponse, status: number, what: string): Promise<void> {
  if (res.status() === status) return;
  let body = '';
  try {
    body = (await res.text()).slice(0, 500);
  } catch {
    body = '(no body)';
  }
  throw new Error(`${what}: expected HTTP ${status}, got ${res.status()} ${body}`);
}

function loggedIn(creds: Credentials, session: Session): LoggedIn {
  return { ...creds, session, auth: bearer(session.token) };
}

export async function setupNeeded(request: APIRequestContext): Promise<boolean> {
  const res = await request.get('/api/setup');
  await expectStatus(res, 200, 'GET /api/setup');
  return ((await res.json()) as { needed: boolean }).needed;
}

/**
 * First-run setup through the API with the run's setup code. Defaults to the shared admin of
 * this e2e run (see serverInfo().admin). Fails if setup was already done.
 */
export async function completeSetup(
  request: APIRequestContext,
  creds?: Partial<Credentials> & { setupCode?: string },
): Promise<LoggedIn> {
  const info = serverInfo();
  const c: Credentials = { email: creds?.email ?? info.admin.email, password: creds?.password ?? info.admin.password };
  // Another server (support/server.ts) has its own setup code.
  const setupCode = creds?.setupCode ?? info.setupCode;
  const res = await request.post('/api/setup', { data: { setupCode, ...c } });
  await expectStatus(res, 201, 'POST /api/setup');
  return loggedIn(c, (await res.json()) as Session);
}

/** The shared admin, logged in; runs first-run setup first when the server still needs it. */
export async function ensureSetup(request: APIRequestContext): Promise<LoggedIn> {
  if (await setupNeeded(request)) return completeSetup(request);
  return login(request, serverInfo().admin);
}

export async function registerUser(request: APIRequestContext, creds?: Partial<Credentials>): Promise<LoggedIn> {
  const c: Credentials = { email: creds?.email ?? uniqueEmail(), password: creds?.password ?? strongPassword() };
  const res = await request.post('/api/auth/register', { data: c });
  await expectStatus(res, 201, 'POST /api/auth/register');
  return loggedIn(c, (await res.json()) as Session);
}

export async function login(request: APIRequestContext, creds: Credentials): Promise<LoggedIn> {
  const res = await request.post('/api/auth/login', { data: { email: creds.email, password: creds.password } });
  await expectStatus(res, 200, 'POST /api/auth/login');
  return loggedIn(creds, (await res.json()) as Session);
}

export async function logout(request: APIRequestContext, who: LoggedIn): Promise<void> {
  const res = await request.post('/api/auth/logout', { headers: who.auth });
  if (res.status() !== 200 && res.status() !== 204) await expectStatus(res, 204, 'POST /api/auth/logout');
}

export async function createSecret(
  request: APIRequestContext,
  who: LoggedIn,
  secret: { name: string; value: string },
): Promise<Secret> {
  const res = await request.post('/api/secrets', { headers: who.auth, data: secret });
  await expectStatus(res, 201, 'POST /api/secrets');
  return (await res.json()) as Secret;
}

export async function listSecrets(request: APIRequestContext, who: LoggedIn): Promise<SecretMeta[]> {
  const res = await request.get('/api/secrets', { headers: who.auth });
  await expectStatus(res, 200, 'GET /api/secrets');
  return ((await res.json()) as { items: SecretMeta[] }).items;
}

export async function getSecret(request: APIRequestContext, who: LoggedIn, id: string): Promise<Secret> {
  const res = await request.get(`/api/secrets/${id}`, { headers: who.auth });
  await expectStatus(res, 200, `GET /api/secrets/${id}`);
  return (await res.json()) as Secret;
}

// Key rotation ----------------------------------------------------------------------------------

export async function requestRotation(request: APIRequestContext, who: LoggedIn, reason: string): Promise<RotationToken> {
  const res = await request.post('/api/request_key_rotation', { headers: who.auth, data: { reason } });
  await expectStatus(res, 201, 'POST /api/request_key_rotation');
  return (await res.json()) as RotationToken;
}

/** The user's own requests, newest first. */
export async function myRotations(request: APIRequestContext, who: LoggedIn): Promise<RotationToken[]> {
  const res = await request.get('/api/rotation_requests', { headers: who.auth });
  await expectStatus(res, 200, 'GET /api/rotation_requests');
  return ((await res.json()) as { items: RotationToken[] }).items;
}

export async function myRotation(request: APIRequestContext, who: LoggedIn, id: string): Promise<RotationToken> {
  const found = (await myRotations(request, who)).find((t) => t.id === id);
  if (!found) throw new Error(`rotation request ${id} is not in the list of ${who.email}`);
  return found;
}

/** Approves as an admin (the admin's password re-authenticates); returns the temporary password. */
export async function approveRotation(request: APIRequestContext, admin: LoggedIn, tokenId: string): Promise<ApproveResult> {
  const res = await request.post(`/admin/api/approve_rotation/${tokenId}`, {
    headers: admin.auth,
    data: { adminPassword: admin.password },
  });
  await expectStatus(res, 200, `POST /admin/api/approve_rotation/${tokenId}`);
  return (await res.json()) as ApproveResult;
}

export async function rejectRotation(request: APIRequestContext, admin: LoggedIn, tokenId: string, reason: string): Promise<void> {
  const res = await request.post(`/admin/api/reject_rotation/${tokenId}`, { headers: admin.auth, data: { reason } });
  await expectStatus(res, 200, `POST /admin/api/reject_rotation/${tokenId}`);
}

export async function finalizeRotation(request: APIRequestContext, admin: LoggedIn, tokenId: string): Promise<void> {
  const res = await request.post(`/admin/api/finalize_a_dek/${tokenId}`, {
    headers: admin.auth,
    data: { adminPassword: admin.password },
  });
  await expectStatus(res, 200, `POST /admin/api/finalize_a_dek/${tokenId}`);
}

/** Runs an approved rotation as the user (this session survives; the user's others end). */
export async function rotateWithToken(
  request: APIRequestContext,
  who: LoggedIn,
  body: { tokenId: string; tempPassword: string; newPassword?: string },
): Promise<RotateResult> {
  const res = await request.post('/api/rotate_keys_with_token', {
    headers: who.auth,
    data: { ...body, currentPassword: who.password },
  });
  await expectStatus(res, 200, 'POST /api/rotate_keys_with_token');
  return (await res.json()) as RotateResult;
}

export async function adminRotations(
  request: APIRequestContext,
  admin: LoggedIn,
  status?: RotationStatus,
): Promise<RotationToken[]> {
  const res = await request.get('/admin/api/rotation_requests', {
    headers: admin.auth,
    params: status ? { status, limit: 200 } : { limit: 200 },
  });
  await expectStatus(res, 200, 'GET /admin/api/rotation_requests');
  return ((await res.json()) as { items: RotationToken[] }).items;
}

/** Audit events whose target is the given rotation request, oldest first. */
export async function auditOfRotation(request: APIRequestContext, admin: LoggedIn, tokenId: string): Promise<AuditEvent[]> {
  const res = await request.get('/admin/api/audit', {
    headers: admin.auth,
    params: { target: `rotation:${tokenId}`, limit: 1000 },
  });
  await expectStatus(res, 200, 'GET /admin/api/audit');
  return ((await res.json()) as { items: AuditEvent[] }).items.reverse();
}

// Password change and account recovery (apps/api/src/modules/recovery) -----------------------

/** Changes the password with this session; every session of the user is revoked (a new one is returned). */
export async function changePassword(request: APIRequestContext, who: LoggedIn, newPassword: string): Promise<LoggedIn> {
  const res = await request.post('/api/auth/change_password', {
    headers: who.auth,
    data: { currentPassword: who.password, newPassword },
  });
  await expectStatus(res, 200, 'POST /api/auth/change_password');
  const r = (await res.json()) as ChangePasswordResult;
  return { email: who.email, password: newPassword, session: { ...who.session, ...r.session }, auth: bearer(r.session.token) };
}

/** "Forgot password?" without a session: the same answer whether or not the email has an account. */
export async function requestRecovery(request: APIRequestContext, email: string, newPassword: string): Promise<RecoveryRequested> {
  const res = await request.post('/api/recovery/request', { data: { email, newPassword } });
  await expectStatus(res, 202, 'POST /api/recovery/request');
  return (await res.json()) as RecoveryRequested;
}

export async function adminRecoveries(
  request: APIRequestContext,
  admin: LoggedIn,
  status?: RecoveryStatus | RecoveryStatus[],
): Promise<RecoveryRequestView[]> {
  const s = Array.isArray(status) ? status.join(',') : status;
  const res = await request.get('/admin/api/recovery_requests', { headers: admin.auth, params: s ? { status: s, limit: 200 } : { limit: 200 } });
  await expectStatus(res, 200, 'GET /admin/api/recovery_requests');
  return ((await res.json()) as { items: RecoveryRequestView[] }).items;
}

/** Approves as an admin, confirming the fingerprint was checked with the user. */
export async function approveRecovery(request: APIRequestContext, admin: LoggedIn, id: string): Promise<RecoveryApproved> {
  const res = await request.post(`/admin/api/recovery_requests/${id}/approve`, {
    headers: admin.auth,
    data: { adminPassword: admin.password, confirmedWithUser: true },
  });
  await expectStatus(res, 200, `POST /admin/api/recovery_requests/${id}/approve`);
  return (await res.json()) as RecoveryApproved;
}

export async function rejectRecovery(request: APIRequestContext, admin: LoggedIn, id: string, reason: string): Promise<RecoveryRequestView> {
  const res = await request.post(`/admin/api/recovery_requests/${id}/reject`, { headers: admin.auth, data: { reason } });
  await expectStatus(res, 200, `POST /admin/api/recovery_requests/${id}/reject`);
  return (await res.json()) as RecoveryRequestView;
}

/** Completes an approved recovery (no session): the vault is re-keyed and every session revoked. */
export async function completeRecovery(request: APIRequestContext, requestId: string, newPassword: string): Promise<RecoveryCompleted> {
  const res = await request.post('/api/recovery/complete', { data: { requestId, newPassword } });
  await expectStatus(res, 200, 'POST /api/recovery/complete');
  return (await res.json()) as RecoveryCompleted;
}

/** "An administrator opened your recovery copy": the user's unacknowledged notices. */
export async function recoveryNotices(request: APIRequestContext, who: LoggedIn): Promise<RecoveryNotice[]> {
  const res = await request.get('/api/recovery/notices', { headers: who.auth });
  await expectStatus(res, 200, 'GET /api/recovery/notices');
  return ((await res.json()) as { items: RecoveryNotice[] }).items;
}

// Notifications (apps/api/src/modules/notifications) ------------------------------------------

/** The signed-in person's inbox, newest first. */
export async function inbox(
  request: APIRequestContext,
  who: LoggedIn,
  opts: { unread?: boolean; limit?: number; offset?: number } = {},
): Promise<InboxList> {
  const params: Record<string, string | number> = { limit: opts.limit ?? 100, offset: opts.offset ?? 0 };
  if (opts.unread !== undefined) params.unread = String(opts.unread);
  const res = await request.get('/api/notifications', { headers: who.auth, params });
  await expectStatus(res, 200, 'GET /api/notifications');
  return (await res.json()) as InboxList;
}

export async function markRead(request: APIRequestContext, who: LoggedIn, id: string): Promise<void> {
  const res = await request.post(`/api/notifications/${id}/read`, { headers: who.auth });
  await expectStatus(res, 200, `POST /api/notifications/${id}/read`);
}

/** Marks every item of the inbox read (e.g. the shared admin's, which every spec's requests reach). */
export async function markAllRead(request: APIRequestContext, who: LoggedIn): Promise<number> {
  const res = await request.post('/api/notifications/read_all', { headers: who.auth });
  await expectStatus(res, 200, 'POST /api/notifications/read_all');
  return ((await res.json()) as { updated: number }).updated;
}

/** The email queue as admins see it, newest first. */
export async function deliveries(request: APIRequestContext, admin: LoggedIn, status?: DeliveryStatus): Promise<Delivery[]> {
  const res = await request.get('/admin/api/notifications/queue', { headers: admin.auth, params: status ? { status, limit: 200 } : { limit: 200 } });
  await expectStatus(res, 200, 'GET /admin/api/notifications/queue');
  return ((await res.json()) as { items: Delivery[] }).items;
}
