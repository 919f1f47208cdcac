import type { RotationStatus, RotationToken } from '@keyturn/shared';
import { Badge, Text, Timeline } from '@mantine/core';
import { formatDateTime } from '../lib/format';

export const STATUS_LABEL: Record<RotationStatus, string> = {
  pending: 'Pending approval',
  approved: 'Approved',
  rejected: 'Rejected',
  cancelled: 'Cancelled',
  expired: 'Expired',
  revoked: 'Revoked',
  in_progress: 'In progress',
  completed: 'Completed',
  failed: 'Failed',
  finalized: 'Finalized',
  rolled_back: 'Restored',
  superseded: 'Superseded',
};

const STATUS_COLOR: Record<RotationStatus, string> = {
  pending: '#8a5300',
  approved: 'blue.8',
  rejected: 'red.9',
  cancelled: 'gray.7',
  expired: 'gray.7',
  revoked: 'red.9',
  in_progress: 'violet.9',
  completed: 'teal.9',
  failed: 'red.9',
  finalized: '#2b6a33',
  rolled_back: '#a13c07',
  superseded: 'gray.7',
};

/** Recovery requests use the same words and colours: their statuses are a subset of these. */
export function StatusBadge({ status, testId = 'rotation-status' }: { status: RotationStatus; testId?: string }) {
  return (
    <Badge color={STATUS_COLOR[status]} variant="filled" radius="sm" data-testid={testId}>
      {STATUS_LABEL[status]}
    </Badge>
  );
}

export interface TimelineEntry {
  status: RotationStatus;
  at: string;
  by: string | null;
  note: string | null;
}

/** requested → approved → completed → finalized, with times, who acted and notes. */
export function RotationTimeline({ token }: { token: RotationToken }) {
  return <StatusTimeline entries={token.timeline} createdAt={token.createdAt} requestedBy={token.userEmail} />;
}

/** A request's history (a rotation's or an account recovery's), oldest first. */
export function StatusTimeline({ entries: given, createdAt, requestedBy }: { entries: TimelineEntry[]; createdAt: string; requestedBy: string }) {
  const entries = given.length ? given : [{ status: 'pending' as const, at: createdAt, by: requestedBy, note: null }];
  return (
    <Timeline active={entries.length - 1} bulletSize={14} lineWidth={2} aria-label="Status timeline">
      {entries.map((e, i) => (
        // Timeline entries are append-only and never reordered; status + time is unique in practice.
        // biome-ignore lint/suspicious/noArrayIndexKey: see above
        <Timeline.Item key={`${e.status}-${e.at}-${i}`} title={i === 0 && e.status === 'pending' ? 'Requested' : STATUS_LABEL[e.status]}>
          <Text size="xs" c="gray.7">
            {formatDateTime(e.at)}
            {e.by ? ` · by ${e.by}` : ''}
          </Text>
          {e.note ? (
            <Text size="sm" mt={2} style={{ overflowWrap: 'anywhere' }}>
              {e.note}
            </Text>
          ) : null}
        </Timeline.Item>
      ))}
    </Timeline>
  );
}
