import { type AuditEvent, AuditOutcomeSchema } from '@keyturn/shared';
import { Alert, Badge, Button, Code, Group, NativeSelect, Pagination, Paper, Stack, Table, Text, TextInput } from '@mantine/core';
import { type FormEvent, useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, LoadingBlock } from '../../../components/query-state';
import { formatDateTime } from '../../../lib/format';
import { type AuditFilters, auditExportUrl, useAuditList, useAuditVerify } from '../api/admin-audit.api';

const LIMIT = 50;
/** Suggestions only: the filter matches an action name exactly, and the server may add more. */
const KNOWN_ACTIONS = [
  'auth.login',
  'auth.logout',
  'auth.register',
  'setup.admin_created',
  'admin.created',
  'secret.created',
  'secret.updated',
  'secret.deleted',
  'rotation.requested',
  'rotation.cancelled',
  'rotation.approved',
  'rotation.rejected',
  'rotation.started',
  'rotation.execute',
  'rotation.completed',
  'rotation.failed',
  'rotation.expired',
  'rotation.revoked',
  'rotation.finalized',
  'rotation.rolled_back',
  'rotation.recovered',
  'rotation.superseded',
  'auth.password_changed',
  'recovery.requested',
  'recovery.approved',
  'recovery.escrow_opened',
  'recovery.rejected',
  'recovery.superseded',
  'recovery.expired',
  'recovery.denied',
  'recovery.revoked',
  'recovery.failed',
  'recovery.completed',
  'recovery.notice_acknowledged',
];
const EMPTY = { actor: '', action: '', outcome: '', from: '', to: '' };
type Draft = typeof EMPTY;

/** datetime-local ("2026-05-01T10:00", local time) → ISO with offset, as the API expects. */
const toIso = (local: string): string | undefined => {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

function toFilters(d: Draft): AuditFilters {
  const outcome = AuditOutcomeSchema.safeParse(d.outcome);
  return {
    actor: d.actor.trim() || undefined,
    action: d.action.trim() || undefined,
    outcome: outcome.success ? outcome.data : undefined,
    from: toIso(d.from),
    to: toIso(d.to),
  };
}

const OUTCOME_COLOR: Record<AuditEvent['outcome'], string> = { success: 'teal.9', failure: 'red.9', denied: '#a13c07' };

export function AdminAuditPage() {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [filters, setFilters] = useState<AuditFilters>({});
  const [page, setPage] = useState(1);
  const [rangeError, setRangeError] = useState<string | null>(null);
  const list = useAuditList(filters, (page - 1) * LIMIT, LIMIT);
  const verify = useAuditVerify();

  const set = (k: keyof Draft) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [k]: e.currentTarget.value });
  const apply = (e: FormEvent) => {
    e.preventDefault();
    const f = toFilters(draft);
    if (f.from && f.to && f.from > f.to) {
      setRangeError('"From" must be before "To".');
      return;
    }
    setRangeError(null);
    setFilters(f);
    setPage(1);
  };
  const reset = () => {
    setDraft(EMPTY);
    setFilters({});
    setRangeError(null);
    setPage(1);
  };
  const filtered = Object.values(filters).some(Boolean);
  const total = list.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / LIMIT));

  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every security-relevant action, hash-chained so tampering shows."
        actions={
          <Button component="a" href={auditExportUrl(filters)} download={filtered ? 'keyturn-audit-filtered.ndjson' : 'keyturn-audit.ndjson'} variant="default">
            {filtered ? 'Export filtered (NDJSON)' : 'Export all (NDJSON)'}
          </Button>
        }
      />
      <Stack gap="md">
        {verify.isPending ? <LoadingBlock label="Verifying the audit chain…" /> : null}
        {verify.isError ? <ErrorBlock error={verify.error} onRetry={() => verify.refetch()} title="Could not verify the audit chain" /> : null}
        {verify.data ? (
          verify.data.ok ? (
            <Alert color="teal" variant="light" title="Chain verified" role="status" data-testid="audit-verdict">
              <Text size="sm">
                {verify.data.checked} events checked; none were altered or removed.
                {verify.data.head ? ` Head: #${verify.data.head.seq}.` : ''}
              </Text>
            </Alert>
          ) : (
            <Alert color="red" variant="light" title="Chain broken" role="alert" data-testid="audit-verdict">
              <Text size="sm">
                The chain breaks at event #{verify.data.firstBadSeq ?? '?'}
                {verify.data.problem ? `: ${verify.data.problem}` : ''}. Audit history was changed or removed.
              </Text>
            </Alert>
          )
        ) : null}

        <Paper withBorder p="md" radius="md" component="form" onSubmit={apply} aria-label="Filter audit events" noValidate>
          <Group align="flex-end" gap="sm">
            <TextInput label="Actor" placeholder="email, or part of it" value={draft.actor} onChange={set('actor')} style={{ flex: '1 1 12rem' }} />
            <TextInput
              label="Action"
              placeholder="e.g. rotation.approved"
              list="audit-actions"
              value={draft.action}
              onChange={set('action')}
              style={{ flex: '1 1 12rem' }}
            />
            <datalist id="audit-actions">
              {KNOWN_ACTIONS.map((a) => (
                <option key={a} value={a} />
              ))}
            </datalist>
            <NativeSelect
              label="Outcome"
              value={draft.outcome}
              onChange={set('outcome')}
              data={[
                { value: '', label: 'Any' },
                { value: 'success', label: 'Success' },
                { value: 'failure', label: 'Failure' },
                { value: 'denied', label: 'Denied' },
              ]}
              style={{ flex: '0 1 9rem' }}
            />
            <TextInput label="From" type="datetime-local" value={draft.from} onChange={set('from')} style={{ flex: '1 1 12rem' }} />
            <TextInput label="To" type="datetime-local" value={draft.to} onChange={set('to')} style={{ flex: '1 1 12rem' }} error={rangeError} />
            <Group gap="xs">
              <Button type="submit">Apply filters</Button>
              <Button variant="default" onClick={reset}>
                Reset
              </Button>
            </Group>
          </Group>
        </Paper>

        {list.isPending ? <LoadingBlock label="Loading audit events…" /> : null}
        {list.isError ? <ErrorBlock error={list.error} onRetry={() => list.refetch()} title="Could not load audit events" /> : null}
        {list.data ? (
          <>
            <Text size="sm" c="gray.7" aria-live="polite">
              {total === 0
                ? 'No events match these filters.'
                : `Showing ${(page - 1) * LIMIT + 1}–${Math.min(page * LIMIT, total)} of ${total} events, newest first.`}
            </Text>
            {list.data.items.length > 0 ? (
              <Table.ScrollContainer minWidth={860}>
                <Table striped highlightOnHover verticalSpacing="xs" fz="sm" aria-label="Audit events">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th scope="col">#</Table.Th>
                      <Table.Th scope="col">Time</Table.Th>
                      <Table.Th scope="col">Actor</Table.Th>
                      <Table.Th scope="col">Action</Table.Th>
                      <Table.Th scope="col">Target</Table.Th>
                      <Table.Th scope="col">Outcome</Table.Th>
                      <Table.Th scope="col">Details</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.data.items.map((e) => (
                      <Table.Tr key={e.seq}>
                        <Table.Td>{e.seq}</Table.Td>
                        <Table.Td style={{ whiteSpace: 'nowrap' }}>{formatDateTime(e.at)}</Table.Td>
                        <Table.Td style={{ overflowWrap: 'anywhere' }}>
                          {e.actorEmail ?? e.actorId ?? '—'}
                          <Text span size="xs" c="gray.7">
                            {' '}
                            ({e.role})
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          <Code>{e.action}</Code>
                        </Table.Td>
                        <Table.Td style={{ overflowWrap: 'anywhere', maxWidth: 200 }}>{e.target ?? '—'}</Table.Td>
                        <Table.Td>
                          <Badge color={OUTCOME_COLOR[e.outcome]} variant="filled" size="sm">
                            {e.outcome}
                          </Badge>
                        </Table.Td>
                        <Table.Td style={{ maxWidth: 320 }}>
                          {Object.keys(e.details).length ? (
                            <Code block style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere', fontSize: 11 }}>
                              {JSON.stringify(e.details)}
                            </Code>
                          ) : (
                            '—'
                          )}
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            ) : null}
            {pages > 1 ? <Pagination total={pages} value={page} onChange={setPage} getControlProps={(c) => ({ 'aria-label': `${c} page` })} /> : null}
          </>
        ) : null}
      </Stack>
    </>
  );
}
