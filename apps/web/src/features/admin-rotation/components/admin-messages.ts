import type { MessageOverrides } from '../../../lib/error-messages';

/** Refusals the server explains with a reason code in `details.reason` (restore's rules). */
const INVALID_STATE_REASONS: Record<string, string> = {
  RESTORE_WINDOW_PASSED: 'This rotation is past its restore window: its backup has been (or is about to be) purged, so it can no longer be restored. Finalize it instead.',
  ADMIN_ROTATION:
    'An administrator’s rotation cannot be restored: their share of the admin master key exists only under their current password. Finalize it instead.',
  RECOVERY_ROTATION:
    'The rotation of an account recovery cannot be restored: the previous key passed through an administrator’s hands and was retired. Finalize it instead.',
  PASSWORD_CHANGED:
    'The user changed their password after this rotation: restoring it would bring the old password back. Finalize it instead.',
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

/** Account recovery requests: the same refusals, in the words of a recovery. */
export const RECOVERY_MESSAGES: MessageOverrides = {
  ...ADMIN_MESSAGES,
  SELF_APPROVAL_FORBIDDEN: 'You cannot approve the recovery of your own account. Another administrator has to approve it.',
  VALIDATION_FAILED: 'Confirm that you checked this request and its fingerprint with the user, and enter your admin password.',
  INVALID_STATE: 'This recovery request is no longer open (it was completed, rejected, replaced or has expired). The list has been refreshed.',
  LOST_RACE: 'Another administrator acted on this request at the same moment. The list has been refreshed.',
  TOKEN_EXPIRED: 'This recovery request has expired. The user has to file a new one.',
  ESCROW_CHECK_FAILED:
    'The recovery copy of this account could not be verified against the user’s key. Nothing was changed; investigate before trying again.',
  AMK_MISMATCH:
    'The stored admin master public key does not match the admin master key. Nothing was changed. Treat this as a security incident.',
};
