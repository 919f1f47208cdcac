import type { RotationToken } from '@keyturn/shared';
import { Alert, Button, Group, Modal, Paper, Stack, Text } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Link } from 'react-router';
import { Fingerprint } from '../../../components/fingerprint';
import { FormError } from '../../../components/query-state';
import { RotationTimeline, StatusBadge } from '../../../components/rotation-status';
import { errorMessage } from '../../../lib/error-messages';
import { formatDateTime, formatDuration } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { useCancelRotation } from '../api/rotation.api';

export function ExpiryCountdown({ expiresAt }: { expiresAt: string }) {
  const now = useNow(1000);
  const left = (new Date(expiresAt).getTime() - now) / 1000;
  return (
    <Text size="sm" fw={600} c={left > 300 ? 'blue.9' : 'red.9'} data-testid="expiry-countdown">
      {left > 0 ? `Expires in ${formatDuration(left)}` : 'Expired'}{' '}
      <Text span size="xs" c="gray.7" fw={400}>
        ({formatDateTime(expiresAt)})
      </Text>
    </Text>
  );
}

export function RotationRequestCard({ token }: { token: RotationToken }) {
  const [confirming, confirm] = useDisclosure(false);
  const cancel = useCancelRotation();
  const canCancel = token.status === 'pending' || token.status === 'approved';

  return (
    <Paper component="li" withBorder p="md" radius="md" data-testid="rotation-request" aria-label={`Request from ${formatDateTime(token.createdAt)}`}>
      <Stack gap="sm">
        <Group justify="space-between" gap="xs">
          <Group gap="xs">
            <StatusBadge status={token.status} />
            <Text size="sm" c="gray.7">
              Requested {formatDateTime(token.createdAt)}
            </Text>
          </Group>
          <Text size="xs" c="gray.7">
            Key v{token.fromKeyVersion}
            {token.toKeyVersion ? ` → v${token.toKeyVersion}` : ''}
          </Text>
        </Group>
        <Fingerprint value={token.fingerprint} />
        <Text size="sm" style={{ overflowWrap: 'anywhere', whiteSpace: 'pre-wrap' }}>
          <Text span fw={600} size="sm">
            Reason:{' '}
          </Text>
          {token.reason}
        </Text>
        {token.status === 'approved' && token.expiresAt ? <ExpiryCountdown expiresAt={token.expiresAt} /> : null}
        {token.status === 'approved' ? (
          <Alert color="blue" variant="light" p="sm" role="note">
            <Text size="sm">
              Approved. Get the temporary password from your administrator (check that they read you the same fingerprint), then run
              the rotation before it expires.
            </Text>
          </Alert>
        ) : null}
        {token.status === 'pending' ? (
          <Text size="sm" c="gray.8">
            Waiting for an administrator. Read them the fingerprint so they can be sure this request is yours.
          </Text>
        ) : null}
        {token.decisionNote ? (
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            <Text span fw={600} size="sm">
              Administrator's note:{' '}
            </Text>
            {token.decisionNote}
          </Text>
        ) : null}
        {token.failureReason ? (
          <Text size="sm" c="red.9" style={{ overflowWrap: 'anywhere' }}>
            {token.failureReason}
          </Text>
        ) : null}
        {token.secretsReencrypted !== null ? (
          <Text size="sm">Secrets re-encrypted: {token.secretsReencrypted}</Text>
        ) : null}
        <RotationTimeline token={token} />
        {token.status === 'approved' || canCancel ? (
          <Group gap="xs">
            {token.status === 'approved' ? (
              <Button component={Link} to={`/key_rotation_with_token?tokenId=${encodeURIComponent(token.id)}`}>
                Run key rotation
              </Button>
            ) : null}
            {canCancel ? (
              <Button variant="default" c="red.9" onClick={confirm.open}>
                Cancel request
              </Button>
            ) : null}
          </Group>
        ) : null}
        <FormError message={cancel.isError ? errorMessage(cancel.error) : null} />
      </Stack>
      <Modal opened={confirming} onClose={confirm.close} title="Cancel this key rotation request?" centered>
        <Stack>
          <Text size="sm">
            The request and any temporary password issued for it stop working. You can make a new request afterwards.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={confirm.close} data-autofocus>
              Keep request
            </Button>
            <Button
              color="red.9"
              loading={cancel.isPending}
              onClick={() => cancel.mutate(token.id, { onSettled: confirm.close })}
            >
              Yes, cancel request
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Paper>
  );
}
