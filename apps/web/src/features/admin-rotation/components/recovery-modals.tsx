import { REASON_MAX, type RecoveryRequestView } from '@keyturn/shared';
import { Alert, Button, Checkbox, Group, Modal, PasswordInput, Stack, Text, Textarea } from '@mantine/core';
import { Fingerprint } from '../../../components/fingerprint';
import { FormError } from '../../../components/query-state';
import { isApiError } from '../../../lib/api-error';
import { errorMessage } from '../../../lib/error-messages';
import { charCount, formatDateTime } from '../../../lib/format';
import { useZodForm } from '../../../lib/use-zod-form';
import { RecoveryApproveBodySchema, RecoveryRejectBodySchema, useApproveRecovery, useRejectRecovery } from '../api/admin-recovery.api';
import { RECOVERY_MESSAGES } from './admin-messages';

export const CONFIRM_LABEL = 'I confirmed this request and its fingerprint with the user through a channel I trust';

/**
 * Approving opens the user's escrow copy and seals it to a key only their new password derives.
 * The confirmation is required by the API too (`confirmedWithUser: true`).
 */
export function ApproveRecoveryModal({
  request: r,
  onClose,
  onDone,
}: {
  request: RecoveryRequestView | null;
  onClose: () => void;
  onDone: (msg: string) => void;
}) {
  const approve = useApproveRecovery();
  const form = useZodForm(
    RecoveryApproveBodySchema,
    { adminPassword: '', confirmed: '' },
    { toInput: (v) => ({ adminPassword: v.adminPassword, confirmedWithUser: v.confirmed === 'yes' }) },
  );
  const confirmed = form.values.confirmed === 'yes';
  const close = () => {
    approve.reset();
    form.reset();
    onClose();
  };
  const wrongPassword = isApiError(approve.error) && approve.error.code === 'ADMIN_REAUTH_FAILED';

  return (
    <Modal opened={r !== null} onClose={close} title="Approve account recovery" centered size="lg">
      {r ? (
        <form
          noValidate
          onSubmit={form.onSubmit((body) =>
            approve.mutate(
              { id: r.id, body },
              {
                onSuccess: (res) => {
                  onDone(`Approved the recovery of ${r.userEmail}. They can complete it until ${formatDateTime(res.expiresAt)}.`);
                  close();
                },
                onError: (e) => {
                  if (isApiError(e) && e.code === 'ADMIN_REAUTH_FAILED') form.setValue('adminPassword', '');
                },
              },
            ),
          )}
        >
          <Stack gap="sm">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              Recover the vault of <strong>{r.userEmail}</strong> ({r.userRole === 'admin' ? 'administrator' : 'user'}), requested{' '}
              {formatDateTime(r.createdAt)} from {r.requesterAddress ?? 'an unknown address'}.
            </Text>
            <Fingerprint value={r.fingerprint} size="lg" />
            <Text size="sm" c="gray.8">
              Contact the user yourself, through a channel you trust (not one given in the request), and ask them to read you the
              fingerprint on their screen. Approve only if the words match.
            </Text>
            <Alert color="orange" variant="light" role="note">
              <Text size="sm">
                Approving opens this user's recovery copy of their key. Only their new password can use it; you never learn it. The user
                is told on their next sign-in, and this is recorded in the audit log.
                {r.userRole === 'admin' ? ' This is an administrator: their share of the admin master key is handed over too.' : ''}
              </Text>
            </Alert>
            <Checkbox
              label={CONFIRM_LABEL}
              checked={confirmed}
              onChange={(e) => form.setValue('confirmed', e.currentTarget.checked ? 'yes' : '')}
              required
              data-autofocus
            />
            <PasswordInput
              label="Your admin password"
              description="Opening a recovery copy needs your password."
              autoComplete="current-password"
              required
              {...form.field('adminPassword')}
              error={form.errors.adminPassword ?? (wrongPassword ? ' ' : undefined)}
            />
            <FormError message={approve.isError ? errorMessage(approve.error, RECOVERY_MESSAGES) : null} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={approve.isPending} disabled={!confirmed}>
                Approve recovery
              </Button>
            </Group>
          </Stack>
        </form>
      ) : null}
    </Modal>
  );
}

export function RejectRecoveryModal({
  request: r,
  onClose,
  onDone,
}: {
  request: RecoveryRequestView | null;
  onClose: () => void;
  onDone: (msg: string) => void;
}) {
  const reject = useRejectRecovery();
  const form = useZodForm(RecoveryRejectBodySchema, { reason: '' });
  const close = () => {
    reject.reset();
    form.reset();
    onClose();
  };
  const count = charCount(form.values.reason);
  return (
    <Modal opened={r !== null} onClose={close} title="Reject account recovery" centered size="lg">
      {r ? (
        <form
          noValidate
          onSubmit={form.onSubmit((body) =>
            reject.mutate(
              { id: r.id, body },
              {
                onSuccess: () => {
                  onDone(`Rejected the recovery request of ${r.userEmail}.`);
                  close();
                },
              },
            ),
          )}
        >
          <Stack gap="sm">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              Reject the recovery request for <strong>{r.userEmail}</strong>.
              {r.status === 'approved' ? ' It was approved: rejecting it now destroys the copy sealed for the requester.' : ''}
            </Text>
            <Fingerprint value={r.fingerprint} />
            <Textarea label="Reason for rejection" required autosize minRows={3} data-autofocus {...form.field('reason')} />
            <Text size="xs" c={count > REASON_MAX ? 'red.9' : 'gray.7'} ta="right">
              {count} / {REASON_MAX} characters
            </Text>
            <FormError message={reject.isError ? errorMessage(reject.error, RECOVERY_MESSAGES) : null} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" color="red.9" loading={reject.isPending}>
                Reject request
              </Button>
            </Group>
          </Stack>
        </form>
      ) : null}
    </Modal>
  );
}
