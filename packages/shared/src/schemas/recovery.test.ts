import { describe, expect, it } from 'vitest';
import {
  ChangePasswordBodySchema,
  RecoveryApproveBodySchema,
  RecoveryCompleteBodySchema,
  RecoveryListQuerySchema,
  RecoveryRequestBodySchema,
} from './recovery';
import { RotationListQuerySchema } from './rotation';

const ID = '11111111-1111-4111-8111-111111111111';
const STRONG = 'a perfectly long passphrase';

describe('recovery and password-change contract', () => {
  it('change password: a new password that differs from the current one, strong, no other field', () => {
    expect(ChangePasswordBodySchema.safeParse({ currentPassword: 'old one', newPassword: STRONG }).success).toBe(true);
    const same = ChangePasswordBodySchema.safeParse({ currentPassword: STRONG, newPassword: STRONG });
    expect(same.success).toBe(false);
    expect(same.error?.issues[0]?.path).toEqual(['newPassword']);
    expect(ChangePasswordBodySchema.safeParse({ currentPassword: 'x', newPassword: 'short' }).success).toBe(false);
    expect(ChangePasswordBodySchema.safeParse({ currentPassword: 'x', newPassword: STRONG, keyVersion: 2 }).success).toBe(false);
  });

  it('request: a normalised email and a strong new password; complete: an id and a bounded password', () => {
    expect(RecoveryRequestBodySchema.parse({ email: '  Me@Example.COM ', newPassword: STRONG }).email).toBe('me@example.com');
    expect(RecoveryRequestBodySchema.safeParse({ email: 'me@example.com', newPassword: 'password1234' }).success).toBe(false);
    expect(RecoveryCompleteBodySchema.safeParse({ requestId: ID, newPassword: 'x' }).success).toBe(true);
    expect(RecoveryCompleteBodySchema.safeParse({ requestId: 'nope', newPassword: 'x' }).success).toBe(false);
    expect(RecoveryCompleteBodySchema.safeParse({ requestId: ID, newPassword: 'x'.repeat(2049) }).success).toBe(false);
  });

  it('approve needs confirmedWithUser to be exactly true', () => {
    expect(RecoveryApproveBodySchema.safeParse({ adminPassword: 'pw', confirmedWithUser: true }).success).toBe(true);
    for (const c of [false, 'true', 1, undefined]) expect(RecoveryApproveBodySchema.safeParse({ adminPassword: 'pw', confirmedWithUser: c }).success).toBe(false);
  });

  it('list filters: known statuses and kinds only', () => {
    expect(RecoveryListQuerySchema.parse({ status: 'pending,approved' }).status).toEqual(['pending', 'approved']);
    expect(RecoveryListQuerySchema.safeParse({ status: 'in_progress' }).success).toBe(false);
    expect(RotationListQuerySchema.parse({ kind: 'recovery' }).kind).toBe('recovery');
    expect(RotationListQuerySchema.safeParse({ kind: 'other' }).success).toBe(false);
  });
});
