import type { RecoveryRequestView } from '@keyturn/shared';
import { Badge, Button, Collapse, Group, Paper, Stack, Text } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useId } from 'react';
import { Fingerprint } from '../../../components/fingerprint';
import { StatusBadge, StatusTimeline } from '../../../components/rotation-status';
import { formatAge, formatDateTime, formatDuration, plural } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { KindBadge } from './kind-badge';

export type RecoveryAction = 'approve' | 'reject';

/** One account recovery request in the console, beside the rotation requests. */
export function RecoveryRow({
  request: r,
  onAction,
}: {
  request: RecoveryRequestView;
  onAction: (a: RecoveryAction, r: RecoveryRequestView) => void;
}) {
  const now = useNow(15_000);
  const [open, timeline] = useDisclosure(false);
  const timelineId = useId();
  const isOpen = r.status === 'pending' || r.status === 'approved';
  const expiresIn = (new Date(r.expiresAt).getTime() - now) / 1000;

  return (
    <Paper component="li" withBorder p="md" radius="md" data-testid="admin-recovery-row" aria-label={`Recovery request from ${r.userEmail}`}>
      <Stack gap={8}>
        <Group justify="space-between" gap="xs" align="flex-start">
          <Stack gap={2} style={{ minWidth: 0, flex: '1 1 16rem' }}>
            <Group gap={6} wrap="wrap">
              <Text fw={700} style={{ overflowWrap: 'anywhere' }} data-testid="row-user">
                {r.userEmail}
              </Text>
              <Badge size="sm" variant="outline" color={r.userRole === 'admin' ? 'indigo.9' : 'gray.8'} data-testid="row-role">
                {r.userRole === 'admin' ? 'Admin' : 'User'}
              </Badge>
            </Group>
            <Text size="xs" c="gray.7">
              Requested {formatAge(r.createdAt, now)} ({formatDateTime(r.createdAt)})
            </Text>
          </Stack>
          <Group gap={6}>
            <KindBadge kind="recovery" />
            <StatusBadge status={r.status} testId="recovery-status" />
          </Group>
        </Group>
        <Fingerprint value={r.fingerprint} />
        <Text size="sm" style={{ overflowWrap: 'anywhere' }} data-testid="row-requester">
          <Text span fw={600} size="sm">
            Requested from:{' '}
          </Text>
          {r.requesterAddress ?? 'unknown address'}
          {r.requesterUserAgent ? (
            <Text span size="xs" c="gray.7">
              {' '}
              · {r.requesterUserAgent}
            </Text>
          ) : null}
        </Text>
        <Group gap="md">
          <Text size="xs" c="gray.7">
            Key v{r.keyVersion}
          </Text>
          {isOpen ? (
            <Text size="xs" fw={600} c={expiresIn > 300 ? 'blue.9' : 'red.9'} data-testid="row-expiry">
              {expiresIn > 0 ? `Expires in ${formatDuration(expiresIn)}` : 'Expired'} ({formatDateTime(r.expiresAt)})
            </Text>
          ) : null}
          {r.status === 'approved' ? (
            <Text size="xs" c="gray.7" data-testid="row-attempts">
              {plural(r.attemptsLeft, 'try', 'tries')} left
            </Text>
          ) : null}
        </Group>
        {r.status === 'approved' ? (
          <Text size="sm" c="gray.8">
            Approved: waiting for the user to complete it with their new password.
          </Text>
        ) : null}
        {r.status === 'completed' && r.rotationTokenId ? (
          <Text size="sm" c="gray.8">
            The vault was re-keyed; finalize its rotation under “Awaiting finalization” (rotation {r.rotationTokenId.slice(0, 8)}).
          </Text>
        ) : null}
        {r.decisionNote ? (
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            <strong>Note: </strong>
            {r.decisionNote}
          </Text>
        ) : null}
        <Group gap="xs" mt={4}>
          {r.status === 'pending' ? (
            <Button size="xs" onClick={() => onAction('approve', r)}>
              Approve
            </Button>
          ) : null}
          {isOpen ? (
            <Button size="xs" variant="default" c="red.9" onClick={() => onAction('reject', r)}>
              Reject
            </Button>
          ) : null}
          <Button size="xs" variant="subtle" onClick={timeline.toggle} aria-expanded={open} aria-controls={timelineId}>
            {open ? 'Hide timeline' : 'Show timeline'}
          </Button>
        </Group>
        <Collapse expanded={open} id={timelineId}>
          <StatusTimeline entries={r.timeline} createdAt={r.createdAt} requestedBy={r.userEmail} />
        </Collapse>
      </Stack>
    </Paper>
  );
}
