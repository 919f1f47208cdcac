import type { RotationStatus, RotationToken } from '@keyturn/shared';
import { Alert, Badge, CloseButton, Group, NativeSelect, Pagination, Stack, Tabs, Text } from '@mantine/core';
import { useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, LoadingBlock } from '../../../components/query-state';
import { STATUS_LABEL } from '../../../components/rotation-status';
import { PAGE_SIZE, useAdminRotations, useAdminRotationsMany } from '../api/admin-rotation.api';
import { FinalizeModal, RejectModal, RestoreModal } from './action-modals';
import { ApproveModal } from './approve-modal';
import { type RowAction, RotationRow } from './rotation-row';

const HISTORY: readonly RotationStatus[] = [
  'rejected',
  'cancelled',
  'expired',
  'revoked',
  'failed',
  'finalized',
  'rolled_back',
  'superseded',
];
const APPROVED: readonly RotationStatus[] = ['approved', 'in_progress'];

type Tab = 'pending' | 'approved' | 'awaiting' | 'history';

export function AdminRotationPage() {
  const [tab, setTab] = useState<Tab>('pending');
  const [acting, setActing] = useState<{ action: RowAction; token: RotationToken } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  // Counts for the tab labels.
  const pending = useAdminRotations('pending', 0);
  const approved = useAdminRotationsMany(APPROVED);
  const awaiting = useAdminRotations('completed', 0);

  const onAction = (action: RowAction, token: RotationToken) => {
    setNotice(null);
    setActing({ action, token });
  };
  const tokenFor = (a: RowAction) => (acting?.action === a ? acting.token : null);
  const closeModal = () => setActing(null);

  const label = (text: string, n: number | undefined) => (
    <Group gap={6} wrap="nowrap">
      <span>{text}</span>
      {n ? (
        <Badge size="sm" variant="filled" color="indigo.8" circle={n < 10}>
          {n}
        </Badge>
      ) : null}
    </Group>
  );

  return (
    <>
      <PageHeader
        title="Key rotation management"
        description="Approve, reject, finalize or restore users' key rotations. Always check the fingerprint with the user."
      />
      {notice ? (
        <Alert color="teal" variant="light" mb="md" role="status">
          <Group justify="space-between" wrap="nowrap">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              {notice}
            </Text>
            <CloseButton aria-label="Dismiss message" onClick={() => setNotice(null)} />
          </Group>
        </Alert>
      ) : null}
      <Tabs value={tab} onChange={(v) => setTab((v as Tab | null) ?? 'pending')} keepMounted={false}>
        <Tabs.List mb="md">
          <Tabs.Tab value="pending">{label('Pending', pending.data?.total)}</Tabs.Tab>
          <Tabs.Tab value="approved">{label('Approved', approved.total)}</Tabs.Tab>
          <Tabs.Tab value="awaiting">{label('Awaiting finalization', awaiting.data?.total)}</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="pending">
          <PagedList status="pending" onAction={onAction} empty="No requests are waiting for approval." />
        </Tabs.Panel>
        <Tabs.Panel value="approved">
          <MergedList statuses={APPROVED} onAction={onAction} empty="No approved requests are waiting to be used." />
        </Tabs.Panel>
        <Tabs.Panel value="awaiting">
          <PagedList status="completed" onAction={onAction} empty="No completed rotations are awaiting finalization." />
        </Tabs.Panel>
        <Tabs.Panel value="history">
          <HistoryList onAction={onAction} />
        </Tabs.Panel>
      </Tabs>

      <ApproveModal token={tokenFor('approve')} onClose={closeModal} />
      <RejectModal token={tokenFor('reject')} onClose={closeModal} onDone={setNotice} />
      <FinalizeModal token={tokenFor('finalize')} onClose={closeModal} onDone={setNotice} />
      <RestoreModal token={tokenFor('restore')} onClose={closeModal} onDone={setNotice} />
    </>
  );
}

function RowList({ items, onAction }: { items: RotationToken[]; onAction: (a: RowAction, t: RotationToken) => void }) {
  return (
    <Stack component="ul" gap="sm" p={0} m={0} style={{ listStyle: 'none' }} aria-label="Rotation requests">
      {items.map((t) => (
        <RotationRow key={t.id} token={t} onAction={onAction} />
      ))}
    </Stack>
  );
}

function PagedList({
  status,
  onAction,
  empty,
}: {
  status: RotationStatus;
  onAction: (a: RowAction, t: RotationToken) => void;
  empty: string;
}) {
  const [page, setPage] = useState(1);
  const q = useAdminRotations(status, (page - 1) * PAGE_SIZE);
  if (q.isPending) return <LoadingBlock label="Loading requests…" />;
  if (q.isError) return <ErrorBlock error={q.error} onRetry={() => q.refetch()} title="Could not load requests" />;
  const pages = Math.max(1, Math.ceil(q.data.total / PAGE_SIZE));
  if (q.data.items.length === 0) return <Text c="gray.7">{empty}</Text>;
  return (
    <Stack gap="sm">
      <RowList items={q.data.items} onAction={onAction} />
      {pages > 1 ? (
        <Pagination total={pages} value={page} onChange={setPage} aria-label="Pages" getControlProps={(c) => ({ 'aria-label': `${c} page` })} />
      ) : null}
    </Stack>
  );
}

function MergedList({
  statuses,
  onAction,
  empty,
}: {
  statuses: readonly RotationStatus[];
  onAction: (a: RowAction, t: RotationToken) => void;
  empty: string;
}) {
  const q = useAdminRotationsMany(statuses);
  if (q.isPending) return <LoadingBlock label="Loading requests…" />;
  if (q.error) return <ErrorBlock error={q.error} onRetry={() => q.refetch()} title="Could not load requests" />;
  if (q.items.length === 0) return <Text c="gray.7">{empty}</Text>;
  return (
    <Stack gap="sm">
      <RowList items={q.items} onAction={onAction} />
      {q.total > q.items.length ? (
        <Text size="sm" c="gray.7">
          Showing the {q.items.length} most recent of {q.total}. Filter by status to see more.
        </Text>
      ) : null}
    </Stack>
  );
}

function HistoryList({ onAction }: { onAction: (a: RowAction, t: RotationToken) => void }) {
  const [filter, setFilter] = useState<'all' | RotationStatus>('all');
  return (
    <Stack gap="sm">
      <NativeSelect
        label="Show"
        maw={280}
        value={filter}
        onChange={(e) => setFilter(e.currentTarget.value as 'all' | RotationStatus)}
        data={[{ value: 'all', label: 'All past requests' }, ...HISTORY.map((s) => ({ value: s, label: STATUS_LABEL[s] }))]}
      />
      {filter === 'all' ? (
        <MergedList statuses={HISTORY} onAction={onAction} empty="No past requests yet." />
      ) : (
        <PagedList key={filter} status={filter} onAction={onAction} empty={`No ${STATUS_LABEL[filter].toLowerCase()} requests.`} />
      )}
    </Stack>
  );
}
