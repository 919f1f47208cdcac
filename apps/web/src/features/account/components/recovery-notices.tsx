import type { RecoveryNotice } from '@keyturn/shared';
import { Alert, Button, Group, Stack, Text } from '@mantine/core';
import { useId } from 'react';
import { FormError } from '../../../components/query-state';
import { STATUS_LABEL } from '../../../components/rotation-status';
import { errorMessage, type MessageOverrides } from '../../../lib/error-messages';
import { formatDateTime } from '../../../lib/format';
import { useAckRecoveryNotice, useCancelRecoveryRequest, useRecoveryNotices } from '../api/account.api';

const CANCEL_MESSAGES: MessageOverrides = {
  // The server says which state the request reached meanwhile.
  INVALID_STATE: (e) => e.message,
  NOT_FOUND: 'This recovery request no longer exists.',
};

/**
 * On every signed-in page, until the owner dismisses it: someone asked to recover this account,
 * or an administrator opened its escrow copy (modules/recovery README, V3). While the request is
 * open the owner can cancel it. A failed load shows nothing: it is retried on the next sign-in
 * or reload, and the audit trail has the same facts.
 */
export function RecoveryNotices() {
  const notices = useRecoveryNotices();
  const items = notices.data?.items ?? [];
  if (items.length === 0) return null;
  return (
    <Stack component="section" aria-label="Security notices" gap="sm" mb="lg">
      {items.map((n) => (
        <NoticeItem key={n.requestId} notice={n} />
      ))}
    </Stack>
  );
}

function NoticeItem({ notice: n }: { notice: RecoveryNotice }) {
  const ack = useAckRecoveryNotice();
  const cancel = useCancelRecoveryRequest();
  const textId = useId();
  const request = `(request ${n.requestId.slice(0, 8)})`;
  const opened = n.openedAt !== null;

  let outcome: string;
  if (n.status === 'completed') {
    outcome = `The recovery was completed${n.completedAt ? ` on ${formatDateTime(n.completedAt)}` : ''}: your vault now has a new key and a new password.`;
  } else if (n.cancellable) {
    outcome = 'If this was not you, cancel the request now and tell your administrator.';
  } else {
    outcome = `The request is ${STATUS_LABEL[n.status].toLowerCase()}: it can no longer be used.`;
  }

  return (
    <Alert
      color="orange"
      variant="light"
      role="alert"
      title={opened ? 'Your recovery copy was opened' : 'Someone asked to recover your account'}
      data-testid="recovery-notice"
    >
      <Stack gap={6}>
        <Text size="sm" id={textId} style={{ overflowWrap: 'anywhere' }}>
          {opened
            ? `An administrator (${n.openedBy ?? 'unknown'}) opened your recovery copy on ${formatDateTime(n.openedAt)} ${request}.`
            : `Someone asked to recover your account on ${formatDateTime(n.requestedAt)}${n.requesterAddress ? ` from ${n.requesterAddress}` : ''} ${request}. No administrator has approved it.`}
        </Text>
        <Text size="sm">{outcome}</Text>
        <FormError message={cancel.isError ? errorMessage(cancel.error, CANCEL_MESSAGES) : ack.isError ? errorMessage(ack.error) : null} />
        <Group gap="xs">
          {n.cancellable ? (
            <Button
              size="xs"
              color="red.9"
              onClick={() => cancel.mutate(n.requestId)}
              loading={cancel.isPending}
              disabled={ack.isPending}
              aria-describedby={textId}
            >
              Cancel request
            </Button>
          ) : null}
          <Button
            size="xs"
            variant="default"
            onClick={() => ack.mutate(n.requestId)}
            loading={ack.isPending}
            disabled={cancel.isPending}
            aria-describedby={textId}
          >
            Dismiss
          </Button>
        </Group>
      </Stack>
    </Alert>
  );
}
