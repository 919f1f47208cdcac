import type { RotationStatus, RotationToken } from '@keyturn/shared';
import { fingerprint } from '@keyturn/shared/crypto';
import type { TokenRow } from './rotation.repo';

/** The API's view of a token: never the temp-password hash, with a derived timeline. */
export function toView(t: TokenRow, userEmail: string, emails: Map<string, string>, maxAttempts: number): RotationToken {
  const who = (id: string | null) => (id ? (emails.get(id) ?? null) : null);
  const timeline: RotationToken['timeline'] = [{ status: 'pending', at: t.createdAt.toISOString(), by: userEmail, note: null }];
  const push = (status: RotationStatus, at: Date | null, by: string | null, note: string | null = null) => {
    if (at) timeline.push({ status, at: at.toISOString(), by, note });
  };
  push('approved', t.approvedAt, who(t.approvedBy), t.selfApproved ? 'self-approved (only admin)' : null);
  if (['rejected', 'cancelled', 'expired', 'revoked'].includes(t.status)) push(t.status as RotationStatus, t.decidedAt, who(t.decidedBy), t.decisionNote);
  push('in_progress', t.lockedAt, userEmail);
  push('completed', t.completedAt, userEmail);
  push('failed', t.failedAt, null, t.failureReason);
  push('finalized', t.finalizedAt, who(t.finalizedBy));
  push('rolled_back', t.rolledBackAt, who(t.rolledBackBy));
  if (t.status === 'superseded') push('superseded', t.endedAt, null);
  timeline.sort((a, b) => a.at.localeCompare(b.at));
  return {
    id: t.id,
    kind: t.kind,
    userId: t.userId,
    userEmail,
    status: t.status as RotationStatus,
    reason: t.reason,
    fingerprint: fingerprint(t.id),
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    fromKeyVersion: t.fromKeyVersion,
    toKeyVersion: t.toKeyVersion,
    secretsReencrypted: t.secretsReencrypted,
    attemptsLeft: Math.max(0, maxAttempts - t.failedAttempts),
    failureReason: t.failureReason,
    decisionNote: t.decisionNote,
    selfApproved: t.selfApproved,
    timeline,
  };
}

export const actorIdsOf = (t: TokenRow) => [t.approvedBy, t.decidedBy, t.finalizedBy, t.rolledBackBy].filter((x): x is string => !!x);
