/**
 * Helpers of the recovery test files (recovery.*.test.ts): the password change and the recovery
 * flow through the API. Not a test file itself.
 */
import type { ChangePasswordResult, RecoveryApproved, RecoveryList, RecoveryRequested, RecoveryRequestView } from '@keyturn/shared';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { api, json, type Response, type TestUser } from './harness';

export const changePasswordRes = (app: FastifyInstance, user: TestUser, newPassword: string, currentPassword = user.password) =>
  api(app, user).post('/api/auth/change_password', { currentPassword, newPassword });

/** Change the password; the user continues on the returned session with the new password. */
export async function changePassword(app: FastifyInstance, user: TestUser, newPassword: string): Promise<{ user: TestUser; result: ChangePasswordResult }> {
  const res = await changePasswordRes(app, user, newPassword);
  expect(res.statusCode, res.body).toBe(200);
  const result = json<ChangePasswordResult>(res);
  return { user: { ...user, password: newPassword, token: result.session.token, csrfToken: result.session.csrfToken }, result };
}

export const requestRecoveryRes = (app: FastifyInstance, email: string, newPassword: string, headers: Record<string, string> = {}) =>
  api(app).post('/api/recovery/request', { email, newPassword }, headers);

export async function requestRecovery(app: FastifyInstance, email: string, newPassword: string): Promise<RecoveryRequested> {
  const res = await requestRecoveryRes(app, email, newPassword);
  expect(res.statusCode, res.body).toBe(202);
  return json<RecoveryRequested>(res);
}

export const approveRecoveryRes = (app: FastifyInstance, admin: TestUser, id: string, adminPassword = admin.password) =>
  api(app, admin).post(`/admin/api/recovery_requests/${id}/approve`, { adminPassword, confirmedWithUser: true });

export async function approveRecovery(app: FastifyInstance, admin: TestUser, id: string): Promise<RecoveryApproved> {
  const res = await approveRecoveryRes(app, admin, id);
  expect(res.statusCode, res.body).toBe(200);
  return json<RecoveryApproved>(res);
}

export const rejectRecoveryRes = (app: FastifyInstance, admin: TestUser, id: string, reason = 'could not confirm with the user') =>
  api(app, admin).post(`/admin/api/recovery_requests/${id}/reject`, { reason });

export const completeRecoveryRes = (app: FastifyInstance, requestId: string, newPassword: string): Promise<Response> =>
  api(app).post('/api/recovery/complete', { requestId, newPassword });

export async function recoveryView(app: FastifyInstance, admin: TestUser, id: string): Promise<RecoveryRequestView> {
  const res = await api(app, admin).get('/admin/api/recovery_requests?limit=200');
  expect(res.statusCode, res.body).toBe(200);
  const hit = json<RecoveryList>(res).items.find((r) => r.id === id);
  expect(hit, `recovery request ${id} in the admin list`).toBeDefined();
  return hit!;
}

/** A second admin, added by `by` (fresh password). */
export async function addAdmin(app: FastifyInstance, by: TestUser, email: string, password: string): Promise<void> {
  const res = await api(app, by).post('/admin/api/admins', { email, password, adminPassword: by.password });
  expect(res.statusCode, res.body).toBe(201);
}
