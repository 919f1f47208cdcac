import type { NotificationEvent } from '@keyturn/shared';

/**
 * What each event says, to whom (README "Events"). Only ids, emails, times and states: never a
 * password, temporary password, secret name or value, key, session token or free text a user
 * typed (a rotation's reason stays in the console).
 */
export type Recipient = { userId: string } | 'admins';
export interface NotificationSpec {
  event: NotificationEvent;
  /** What it is about (a token or request id): with the event, channel and recipient, the idempotency key. */
  about: string;
  to: Recipient[];
  title: string;
  body: string;
  /** An SPA path, or null. */
  link: string | null;
  /** Security events cannot be muted. */
  security: boolean;
}

const ADMIN_CONSOLE = '/admin/key_rotation_management';
const MY_ROTATIONS = '/rotation_request';
const short = (id: string) => id.slice(0, 8);
const at = (d: Date | string) => `${new Date(d).toISOString().replace('T', ' ').slice(0, 16)} UTC`;

export const messages = {
  rotationRequested: (tokenId: string, userEmail: string): NotificationSpec => ({
    event: 'rotation.requested',
    about: tokenId,
    to: ['admins'],
    title: 'Key rotation requested',
    body: `${userEmail} asked for a key rotation (request ${short(tokenId)}). Review it in the admin console.`,
    link: ADMIN_CONSOLE,
    security: false,
  }),
  rotationApproved: (tokenId: string, userId: string, expiresAt: Date | string): NotificationSpec => ({
    event: 'rotation.approved',
    about: tokenId,
    to: [{ userId }],
    title: 'Your key rotation was approved',
    body: `Your key rotation request ${short(tokenId)} was approved. Ask your administrator for the temporary password; it expires at ${at(expiresAt)}.`,
    link: '/key_rotation_with_token',
    security: false,
  }),
  rotationRejected: (tokenId: string, userId: string): NotificationSpec => ({
    event: 'rotation.rejected',
    about: tokenId,
    to: [{ userId }],
    title: 'Your key rotation was rejected',
    body: `Your key rotation request ${short(tokenId)} was rejected. The reason is on your rotation requests page.`,
    link: MY_ROTATIONS,
    security: false,
  }),
  rotationCompleted: (tokenId: string, userId: string, userEmail: string, keyVersion: number): NotificationSpec => ({
    event: 'rotation.completed',
    about: tokenId,
    to: [{ userId }, 'admins'],
    title: 'Key rotation completed',
    body: `The keys of ${userEmail} were rotated to version ${keyVersion} (request ${short(tokenId)}); every other session was signed out. Administrators: the new escrow copy awaits finalization.`,
    link: ADMIN_CONSOLE,
    security: false,
  }),
  rotationFinalized: (tokenId: string, userId: string): NotificationSpec => ({
    event: 'rotation.finalized',
    about: tokenId,
    to: [{ userId }],
    title: 'Your key rotation is finalized',
    body: `An administrator finalized the escrow copy of your new keys (request ${short(tokenId)}).`,
    link: MY_ROTATIONS,
    security: false,
  }),
  rotationFailed: (tokenId: string, userEmail: string, reason: string): NotificationSpec => ({
    event: 'rotation.failed',
    about: tokenId,
    to: ['admins'],
    title: 'A key rotation failed',
    body: `The key rotation of ${userEmail} (request ${short(tokenId)}) failed and was rolled back (${reason}); nothing changed.`,
    link: ADMIN_CONSOLE,
    security: false,
  }),
  rotationRevoked: (tokenId: string, userId: string, userEmail: string): NotificationSpec => ({
    event: 'rotation.revoked',
    about: tokenId,
    to: [{ userId }, 'admins'],
    title: 'Suspicious: a rotation was revoked after wrong temporary passwords',
    body: `Rotation request ${short(tokenId)} of ${userEmail} was revoked after too many wrong temporary passwords. If that was not you, tell your administrator.`,
    link: MY_ROTATIONS,
    security: true,
  }),
  recoveryRequested: (requestId: string, userId: string, userEmail: string): NotificationSpec => ({
    event: 'recovery.requested',
    about: requestId,
    to: [{ userId }, 'admins'],
    title: 'Account recovery requested',
    body: `Someone asked to recover the account ${userEmail} (request ${short(requestId)}). Administrators: confirm it with the user before approving. Account owner: if it was not you, cancel it from the notice when you sign in.`,
    link: ADMIN_CONSOLE,
    security: true,
  }),
  recoveryApproved: (requestId: string, userId: string, userEmail: string, adminEmail: string): NotificationSpec => ({
    event: 'recovery.approved',
    about: requestId,
    to: [{ userId }, 'admins'],
    title: 'An administrator opened a recovery copy',
    body: `${adminEmail} opened the recovery copy of ${userEmail} for recovery request ${short(requestId)}. If that was not expected, cancel the request and tell another administrator.`,
    link: ADMIN_CONSOLE,
    security: true,
  }),
  recoveryCompleted: (requestId: string, userId: string, userEmail: string): NotificationSpec => ({
    event: 'recovery.completed',
    about: requestId,
    to: [{ userId }, 'admins'],
    title: 'Account recovered',
    body: `The account ${userEmail} was recovered with a new password (request ${short(requestId)}); every secret was re-encrypted and every session signed out.`,
    link: ADMIN_CONSOLE,
    security: true,
  }),
  auditVerifyFailed: (verdictId: string, firstBadSeq: number | null, problem: string | null): NotificationSpec => ({
    event: 'audit.verify_failed',
    about: verdictId,
    to: ['admins'],
    title: 'The audit trail failed verification',
    body: `Verifying the audit hash chain failed${firstBadSeq === null ? '' : ` at event ${firstBadSeq}`}${problem ? ` (${problem})` : ''}: an event may have been edited or deleted. Investigate before trusting the trail.`,
    link: '/admin/audit',
    security: true,
  }),
  adminCreated: (adminId: string, email: string, byEmail: string | null): NotificationSpec => ({
    event: 'admin.created',
    about: adminId,
    to: ['admins'],
    title: 'A new administrator was added',
    body: `${email} is now an administrator${byEmail ? ` (added by ${byEmail})` : ''} and holds a share of the admin master key.`,
    link: '/admin/admins',
    security: true,
  }),
};
