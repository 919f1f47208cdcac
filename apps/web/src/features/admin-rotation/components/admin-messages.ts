import type { MessageOverrides } from '../../../lib/error-messages';

/** Refusals the server explains with a reason code in `details.reason` (restore's rules). */
const INVALID_STATE_REASONS: Record<string, string> = {
  RESTORE_WINDOW_PASSED: 'This rotation is past its restore window: its backup has been (or is about to be) purged, so it can no longer be restored. Finalize it instead.',
  ADMIN_ROTATION:
    'An administrator’s rotation cannot be restored: their share of the admin master key exists only under their current password. Finalize it instead.',
};

export const ADMIN_MESSAGES: MessageOverrides = {
  ADMIN_REAUTH_FAILED: 'Your admin password was not accepted. Nothing was changed.',
  SELF_APPROVAL_FORBIDDEN: 'You cannot approve your own request. Another administrator has to approve it.',
  INVALID_STATE: (e) => {
    const reason = e.details && typeof e.details === 'object' ? (e.details as { reason?: unknown }).reason : undefined;
    return (typeof reason === 'string' && INVALID_STATE_REASONS[reason]) || 'This request is no longer in a state that allows this. The list has been refreshed.';
  },
  LOST_RACE: 'Another administrator acted on this request at the same moment. The list has been refreshed.',
  NOT_FOUND: 'This request no longer exists. The list has been refreshed.',
  SECRETS_CHANGED:
    'Restore refused: the user added, changed or deleted secrets after the rotation, and restoring the old keys would lose those changes. Finalize instead, or ask the user to rotate again.',
  TOKEN_EXPIRED: 'This request has expired.',
};
