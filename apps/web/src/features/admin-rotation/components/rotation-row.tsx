import type { RotationToken } from '@keyturn/shared';
import { Badge, Button, Collapse, Group, Paper, Stack, Text } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useId } from 'react';
import { Fingerprint } from '../../../components/fingerprint';
import { RotationTimeline, StatusBadge } from '../../../components/rotation-status';
import { formatAge, formatDateTime, formatDuration } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { KindBadge } from './kind-badge';

export type RowAction = 'approve' | 'reject' | 'finalize' | 'restore';

/** When the request entered its current state, from the timeline. */
const enteredAt = (t: RotationToken) => t.timeline.findLast((e) => e.status === t.status)?.at ?? t.createdAt;

export function RotationRow({ token, onAction }: { token: RotationToken; onAction: (a: RowAction, t: RotationToken) => void }) {
  const now = useNow(15_000);
  const [open, timeline] = useDisclosure(false);
  const timelineId = useId();
  const expiresIn = token.expiresAt ? (new Date(token.expiresAt).getTime() - now) / 1000 : null;

  return (
    <Paper component="li" withBorder p="md" radius="md" data-testid="admin-rotation-row" aria-label={`Request from ${token.userEmail}`}>
      <Stack gap={8}>
        <Group justify="space-between" gap="xs" align="flex-start">
          <Stack gap={2} style={{ minWidth: 0, flex: '1 1 16rem' }}>
            <Text fw={700} style={{ overflowWrap: 'anywhere' }} data-testid="row-user">
              {token.userEmail}
            </Text>
            <Text size="xs" c="gray.7">
              Requested {formatAge(token.createdAt, now)} ({formatDateTime(token.createdAt)})
              {token.status !== 'pending' ? ` · ${token.status === 'completed' ? 'completed' : 'updated'} ${formatAge(enteredAt(token), now)}` : ''}
            </Text>
          </Stack>
          <Group gap={6}>
            <KindBadge kind={token.kind} />
            {token.selfApproved ? (
              <Badge color="#a13c07" variant="outline">
                Self-approved
              </Badge>
            ) : null}
            <StatusBadge status={token.status} />
          </Group>
        </Group>
        <Fingerprint value={token.fingerprint} />
        <Text size="sm" style={{ overflowWrap: 'anywhere', whiteSpace: 'pre-wrap' }} data-testid="row-reason">
          <Text span fw={600} size="sm">
            Reason:{' '}
          </Text>
          {token.reason}
        </Text>
        <Group gap="md">
          <Text size="xs" c="gray.7">
            Key v{token.fromKeyVersion}
            {token.toKeyVersion ? ` → v${token.toKeyVersion}` : ''}
          </Text>
          {token.secretsReencrypted !== null ? (
            <Text size="xs" c="gray.7">
              {token.secretsReencrypted} secrets re-encrypted
            </Text>
          ) : null}
          {token.status === 'approved' && expiresIn !== null ? (
            <Text size="xs" fw={600} c={expiresIn > 300 ? 'blue.9' : 'red.9'}>
              {expiresIn > 0 ? `Expires in ${formatDuration(expiresIn)}` : 'Expired'}
            </Text>
          ) : null}
          {token.status === 'approved' ? (
            <Text size="xs" c="gray.7">
              {token.attemptsLeft} tries left
            </Text>
          ) : null}
        </Group>
        {token.decisionNote ? (
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            <strong>Note: </strong>
            {token.decisionNote}
          </Text>
        ) : null}
        {token.failureReason ? (
          <Text size="sm" c="red.9" style={{ overflowWrap: 'anywhere' }}>
            {token.failureReason}
          </Text>
        ) : null}
        <Group gap="xs" mt={4}>
          {token.status === 'pending' ? (
            <>
              <Button size="xs" onClick={() => onAction('approve', token)}>
                Approve
              </Button>
              <Button size="xs" variant="default" c="red.9" onClick={() => onAction('reject', token)}>
                Reject
              </Button>
            </>
          ) : null}
          {token.status === 'completed' ? (
            <>
              <Button size="xs" onClick={() => onAction('finalize', token)}>
                Finalize
              </Button>
              {/* A recovery's rotation keeps no backup: the old key passed through an admin's hands. */}
              {token.kind === 'rotation' ? (
                <Button size="xs" variant="default" onClick={() => onAction('restore', token)}>
                  Restore
                </Button>
              ) : null}
            </>
          ) : null}
          <Button size="xs" variant="subtle" onClick={timeline.toggle} aria-expanded={open} aria-controls={timelineId}>
            {open ? 'Hide timeline' : 'Show timeline'}
          </Button>
        </Group>
        <Collapse expanded={open} id={timelineId}>
          <RotationTimeline token={token} />
        </Collapse>
      </Stack>
    </Paper>
  );
}
