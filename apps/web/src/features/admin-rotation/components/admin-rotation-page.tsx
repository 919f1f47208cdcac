import type { RecoveryRequestView, RecoveryStatus, RotationStatus, RotationToken } from '@keyturn/shared';
import { Alert, Badge, CloseButton, Group, NativeSelect, Pagination, Stack, Tabs, Text } from '@mantine/core';
import { useState } from 'react';
import { useSearchParams } from 'react-router';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, LoadingBlock } from '../../../components/query-state';
import { STATUS_LABEL } from '../../../components/rotation-status';
import { type KindFilter, type QueueItem, type QueueSpec, useAdminQueue } from '../api/admin-queue.api';
import { FinalizeModal, RejectModal, RestoreModal } from './action-modals';
import { ApproveModal } from './approve-modal';
import { type RecoveryAction, RecoveryRow } from './recovery-row';
import { ApproveRecoveryModal, RejectRecoveryModal } from './recovery-modals';
import { type RowAction, RotationRow } from './rotation-row';

const PAGE_SIZE = 25;

const ROTATION_HISTORY: readonly RotationStatus[] = [
  'rejected',
  'cancelled',
  'expired',
  'revoked',
  'failed',
  'finalized',
  'rolled_back',
  'superseded',
];
const RECOVERY_HISTORY: readonly RecoveryStatus[] = ['completed', 'rejected', 'cancelled', 'expired', 'revoked', 'superseded', 'failed'];

type Tab = 'pending' | 'approved' | 'awaiting' | 'history';

/** What each tab lists, of each kind. A completed recovery's rotation waits under "Awaiting finalization". */
const TABS: Record<Exclude<Tab, 'history'>, QueueSpec> = {
  pending: { rotation: ['pending'], recovery: ['pending'] },
  approved: { rotation: ['approved', 'in_progress'], recovery: ['approved'] },
  awaiting: { rotation: ['completed'], recovery: [] },
};
const HISTORY: QueueSpec = { rotation: ROTATION_HISTORY, recovery: RECOVERY_HISTORY };
type HistoryFilter = 'all' | RotationStatus;
const HISTORY_STATUSES: readonly RotationStatus[] = [...new Set<RotationStatus>([...ROTATION_HISTORY, ...RECOVERY_HISTORY])];

const KINDS: { value: KindFilter; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'rotation', label: 'Rotation' },
  { value: 'recovery', label: 'Recovery' },
];
const isKind = (v: string | null): v is KindFilter => v === 'all' || v === 'rotation' || v === 'recovery';

type Acting =
  | { source: 'rotation'; action: RowAction; token: RotationToken }
  | { source: 'recovery'; action: RecoveryAction; request: RecoveryRequestView };

interface Handlers {
  onRotation: (a: RowAction, t: RotationToken) => void;
  onRecovery: (a: RecoveryAction, r: RecoveryRequestView) => void;
}

export function AdminRotationPage() {
  const [tab, setTab] = useState<Tab>('pending');
  const [params, setParams] = useSearchParams();
  const kindParam = params.get('kind');
  const kind: KindFilter = isKind(kindParam) ? kindParam : 'all';
  const [acting, setActing] = useState<Acting | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  // Counts for the tab labels (the lists below share these queries).
  const pending = useAdminQueue(TABS.pending, kind);
  const approved = useAdminQueue(TABS.approved, kind);
  const awaiting = useAdminQueue(TABS.awaiting, kind);

  const handlers: Handlers = {
    onRotation: (action, token) => {
      setNotice(null);
      setActing({ source: 'rotation', action, token });
    },
    onRecovery: (action, request) => {
      setNotice(null);
      setActing({ source: 'recovery', action, request });
    },
  };
  const tokenFor = (a: RowAction) => (acting?.source === 'rotation' && acting.action === a ? acting.token : null);
  const recoveryFor = (a: RecoveryAction) => (acting?.source === 'recovery' && acting.action === a ? acting.request : null);
  const closeModal = () => setActing(null);

  const setKind = (k: KindFilter) =>
    setParams(
      (p) => {
        const next = new URLSearchParams(p);
        if (k === 'all') next.delete('kind');
        else next.set('kind', k);
        return next;
      },
      { replace: true },
    );

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
        description="Approve, reject, finalize or restore users' key rotations and account recoveries. Always check the fingerprint with the user."
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
      <NativeSelect
        label="Kind"
        description="Key rotations, account recoveries, or both."
        maw={280}
        mb="md"
        value={kind}
        onChange={(e) => setKind(e.currentTarget.value as KindFilter)}
        data={KINDS}
      />
      <Tabs value={tab} onChange={(v) => setTab((v as Tab | null) ?? 'pending')} keepMounted={false}>
        <Tabs.List mb="md">
          <Tabs.Tab value="pending">{label('Pending', pending.total)}</Tabs.Tab>
          <Tabs.Tab value="approved">{label('Approved', approved.total)}</Tabs.Tab>
          <Tabs.Tab value="awaiting">{label('Awaiting finalization', awaiting.total)}</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="pending">
          <QueueList key={kind} spec={TABS.pending} kind={kind} handlers={handlers} empty="No requests are waiting for approval." />
        </Tabs.Panel>
        <Tabs.Panel value="approved">
          <QueueList key={kind} spec={TABS.approved} kind={kind} handlers={handlers} empty="No approved requests are waiting to be used." />
        </Tabs.Panel>
        <Tabs.Panel value="awaiting">
          <QueueList
            key={kind}
            spec={TABS.awaiting}
            kind={kind}
            handlers={handlers}
            empty="No completed rotations are awaiting finalization."
          />
        </Tabs.Panel>
        <Tabs.Panel value="history">
          <HistoryList kind={kind} handlers={handlers} />
        </Tabs.Panel>
      </Tabs>

      <ApproveModal token={tokenFor('approve')} onClose={closeModal} />
      <RejectModal token={tokenFor('reject')} onClose={closeModal} onDone={setNotice} />
      <FinalizeModal token={tokenFor('finalize')} onClose={closeModal} onDone={setNotice} />
      <RestoreModal token={tokenFor('restore')} onClose={closeModal} onDone={setNotice} />
      <ApproveRecoveryModal request={recoveryFor('approve')} onClose={closeModal} onDone={setNotice} />
      <RejectRecoveryModal request={recoveryFor('reject')} onClose={closeModal} onDone={setNotice} />
    </>
  );
}

function Row({ item, handlers }: { item: QueueItem; handlers: Handlers }) {
  return item.source === 'rotation' ? (
    <RotationRow token={item.token} onAction={handlers.onRotation} />
  ) : (
    <RecoveryRow request={item.request} onAction={handlers.onRecovery} />
  );
}

/** Both kinds in one list, newest first, paged here (each list holds its 200 most recent). */
function QueueList({ spec, kind, handlers, empty }: { spec: QueueSpec; kind: KindFilter; handlers: Handlers; empty: string }) {
  const [page, setPage] = useState(1);
  const q = useAdminQueue(spec, kind);
  if (q.isPending) return <LoadingBlock label="Loading requests…" />;
  if (q.error) return <ErrorBlock error={q.error} onRetry={q.refetch} title="Could not load requests" />;
  if (q.items.length === 0) return <Text c="gray.7">{empty}</Text>;
  const pages = Math.max(1, Math.ceil(q.items.length / PAGE_SIZE));
  const current = Math.min(page, pages);
  const shown = q.items.slice((current - 1) * PAGE_SIZE, current * PAGE_SIZE);
  return (
    <Stack gap="sm">
      <Stack component="ul" gap="sm" p={0} m={0} style={{ listStyle: 'none' }} aria-label="Requests">
        {shown.map((item) => (
          <Row key={`${item.source}-${item.id}`} item={item} handlers={handlers} />
        ))}
      </Stack>
      {pages > 1 ? (
        <Pagination
          total={pages}
          value={current}
          onChange={setPage}
          aria-label="Pages"
          getControlProps={(c) => ({ 'aria-label': `${c} page` })}
        />
      ) : null}
      {q.truncated ? (
        <Text size="sm" c="gray.7">
          Showing the {q.items.length} most recent of {q.total}. Filter by status to see others.
        </Text>
      ) : null}
    </Stack>
  );
}

function HistoryList({ kind, handlers }: { kind: KindFilter; handlers: Handlers }) {
  const [filter, setFilter] = useState<HistoryFilter>('all');
  const spec: QueueSpec =
    filter === 'all'
      ? HISTORY
      : {
          rotation: ROTATION_HISTORY.includes(filter) ? [filter] : [],
          recovery: (RECOVERY_HISTORY as readonly string[]).includes(filter) ? [filter as RecoveryStatus] : [],
        };
  return (
    <Stack gap="sm">
      <NativeSelect
        label="Show"
        maw={280}
        value={filter}
        onChange={(e) => setFilter(e.currentTarget.value as HistoryFilter)}
        data={[{ value: 'all', label: 'All past requests' }, ...HISTORY_STATUSES.map((s) => ({ value: s, label: STATUS_LABEL[s] }))]}
      />
      <QueueList
        key={`${kind}-${filter}`}
        spec={spec}
        kind={kind}
        handlers={handlers}
        empty={filter === 'all' ? 'No past requests yet.' : `No ${STATUS_LABEL[filter].toLowerCase()} requests.`}
      />
    </Stack>
  );
}
