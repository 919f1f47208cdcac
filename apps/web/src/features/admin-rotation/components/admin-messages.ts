import type { MessageOverrides } from '../../../lib/error-messages';

export const ADMIN_MESSAGES: MessageOverrides = {
  ADMIN_REAUTH_FAILED: 'Your admin password was not accepted. Nothing was changed.',
  SELF_APPROVAL_FORBIDDEN: 'You cannot approve your own request. Another administrator has to approve it.',
  INVALID_STATE: 'This request is no longer in a state that allows this. The list has been refreshed.',
  LOST_RACE: 'Another administrator acted on this request at the same moment. The list has been refreshed.',
  NOT_FOUND: 'This request no longer exists. The list has been refreshed.',
  SECRETS_CHANGED:
    'Restore refused: the user added, changed or deleted secrets after the rotation, and restoring the old keys would lose those changes. Finalize instead, or ask the user to rotate again.',
  TOKEN_EXPIRED: 'This request has expired.',
};
