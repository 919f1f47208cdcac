import { type MaintenanceRun, ROTATION_STATUSES, type SystemStatus } from '@keyturn/shared';
import { Alert, Anchor, Badge, Button, Group, Paper, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { Link } from 'react-router';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, FormError, LoadingBlock } from '../../../components/query-state';
import { STATUS_LABEL } from '../../../components/rotation-status';
import { errorMessage } from '../../../lib/error-messages';
import { formatAge, formatDateTime, formatDuration, plural } from '../../../lib/format';
import { useMaintenance, useSystemStatus, useVerifyAudit } from '../api/admin-health.api';
import { RotationsChart } from './rotations-chart';

export function AdminHealthPage() {
  const status = useSystemStatus();
  return (
    <>
      <PageHeader
        title="System health"
        description="The state of key rotations, maintenance and the audit chain."
        actions={
          status.data ? (
            <Text size="xs" c="gray.7">
              Updated {formatDateTime(status.data.at)}
            </Text>
          ) : null
        }
      />
      {status.isPending ? <LoadingBlock label="Loading system status…" /> : null}
      {status.isError ? <ErrorBlock error={status.error} onRetry={() => status.refetch()} title="Could not load the system status" /> : null}
      {status.data ? <HealthBody s={status.data} /> : null}
    </>
  );
}

function HealthBody({ s }: { s: SystemStatus }) {
  const pending = s.counts.pending ?? 0;
  return (
    <Stack gap="lg">
      <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }} spacing="sm">
        <Tile label="Pending approval" value={String(pending)} hint={s.oldestPendingAgeSeconds !== null ? `Oldest waiting ${formatDuration(s.oldestPendingAgeSeconds)}` : 'Nothing waiting'} warn={pending > 0} />
        <Tile label="Awaiting finalization" value={String(s.awaitingFinalization)} hint="Completed, not yet finalized" warn={s.awaitingFinalization > 0} />
        <Tile label="Stale locks" value={String(s.staleLocks)} hint="Rotations stuck in progress" warn={s.staleLocks > 0} bad={s.staleLocks > 0} />
        <Tile label="Overdue expiries" value={String(s.overdueExpiries)} hint="Approved tokens past their expiry" warn={s.overdueExpiries > 0} />
      </SimpleGrid>

      <AuditVerdict audit={s.audit} />

      {s.notifications.emailDegraded || s.notifications.dead > 0 ? (
        <Alert color="yellow" title={s.notifications.emailDegraded ? 'Notification email is failing' : 'Undelivered notifications'} data-testid="notifications-alert">
          {s.notifications.emailDegraded ? 'Mail has failed for more than 15 minutes; notifications still reach the in-app inbox. ' : ''}
          {s.notifications.dead > 0 ? `${s.notifications.dead} notification email${s.notifications.dead === 1 ? ' was' : 's were'} given up on. ` : ''}
          <Anchor component={Link} to="/admin/notifications">
            Open notification delivery
          </Anchor>
        </Alert>
      ) : null}

      <Paper withBorder p="md" radius="md">
        <Title order={2} size="h4" mb="sm">
          Keys and backups
        </Title>
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm" component="dl" m={0}>
          <div>
            <Text component="dt" size="xs" c="gray.7">
              Admin master key fingerprint
            </Text>
            <Text component="dd" m={0} ff="monospace" data-testid="amk-fingerprint">
              {s.amkFingerprint ?? 'Not set up yet'}
            </Text>
            <Text component="dd" m={0} size="xs" c="gray.7">
              Compare it with the one you noted at setup. If it ever changes, escrow copies may be sealed to another key.
            </Text>
          </div>
          <div>
            <Text component="dt" size="xs" c="gray.7">
              Restorable rotations
            </Text>
            <Text component="dd" m={0} fw={700} data-testid="restorable-count">
              {s.restorable.count}
            </Text>
            <Text component="dd" m={0} size="xs" c="gray.7">
              {s.restorable.nextWindowEnd
                ? `Completed rotations can be restored from their backup until their restore window ends; the first ends ${formatDateTime(s.restorable.nextWindowEnd)}.`
                : 'No completed rotation can be restored: backups are purged when their restore window ends.'}
            </Text>
          </div>
        </SimpleGrid>
      </Paper>

      <Paper withBorder p="md" radius="md">
        <Title order={2} size="h4" mb="sm">
          Requests by state
        </Title>
        <SimpleGrid cols={{ base: 2, xs: 3, md: 6 }} spacing="xs" component="dl" m={0}>
          {ROTATION_STATUSES.map((st) => (
            <div key={st}>
              <Text component="dt" size="xs" c="gray.7">
                {STATUS_LABEL[st]}
              </Text>
              <Text component="dd" m={0} fw={700} size="lg" data-testid={`count-${st}`}>
                {s.counts[st] ?? 0}
              </Text>
            </div>
          ))}
        </SimpleGrid>
        <Anchor component={Link} to="/admin/key_rotation_management" size="sm" c="indigo.9" mt="sm" display="inline-block">
          Go to rotation management
        </Anchor>
      </Paper>

      <Paper withBorder p="md" radius="md">
        <Title order={2} size="h4" mb="sm">
          Rotations over time
        </Title>
        <RotationsChart days={s.rotationsByDay} />
      </Paper>

      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
        <MaintenanceCard kind="cleanup" title="Cleanup" description="Expire overdue tokens, purge old backups and ended sessions." last={s.lastCleanup} />
        <MaintenanceCard kind="recover" title="Recovery" description="Settle interrupted rotations (stale in-progress locks)." last={s.lastRecover} />
      </SimpleGrid>
    </Stack>
  );
}

function Tile({ label, value, hint, warn, bad }: { label: string; value: string; hint: ReactNode; warn?: boolean; bad?: boolean }) {
  return (
    <Paper withBorder p="md" radius="md" style={warn ? { borderColor: bad ? '#c92a2a' : '#8a5300' } : undefined}>
      <Text size="xs" c="gray.7" tt="uppercase" fw={700}>
        {label}
      </Text>
      <Text fz={28} fw={800} lh={1.2}>
        {value}
      </Text>
      <Text size="xs" c="gray.7">
        {hint}
      </Text>
    </Paper>
  );
}

/**
 * The verdict of the last full verify (recorded by the scheduler, the CLI or a verify here): the
 * status never walks the chain itself, so it says when that verify ran and what came after it.
 */
function AuditVerdict({ audit }: { audit: SystemStatus['audit'] }) {
  const verify = useVerifyAudit();
  const when = audit.verifiedAt ? `${formatDateTime(audit.verifiedAt)} (${formatAge(audit.verifiedAt)})` : null;
  const since = `${plural(audit.appendedSince, 'event')} appended since`;
  const footer = (
    <>
      <Group gap="sm" mt="xs">
        <Button size="xs" variant="default" onClick={() => verify.mutate()} loading={verify.isPending}>
          Verify now
        </Button>
        <Anchor component={Link} to="/admin/audit" c="indigo.9" size="sm">
          Open the audit log
        </Anchor>
      </Group>
      <FormError message={verify.isError ? errorMessage(verify.error) : null} />
    </>
  );
  if (audit.verdict === 'ok') {
    return (
      <Alert color="teal" variant="light" title="Audit chain intact" role="status" data-testid="audit-verdict">
        <Text size="sm" data-testid="audit-verified">
          Verified {plural(audit.checked, 'event')} at {when}: none were altered or removed. {since}
          {audit.appendedSince > 0 ? ', checked by the next verify' : ''}.
        </Text>
        {footer}
      </Alert>
    );
  }
  if (audit.verdict === 'broken') {
    return (
      <Alert color="red" variant="light" title="Audit chain broken" role="alert" data-testid="audit-verdict">
        <Text size="sm" data-testid="audit-verified">
          The verify at {when} found event #{audit.firstBadSeq ?? '?'}
          {audit.problem ? `: ${audit.problem}` : ''} ({plural(audit.checked, 'event')} checked). Someone changed or removed
          audit history. Investigate before trusting the log; this stays until a verify passes.
        </Text>
        {footer}
      </Alert>
    );
  }
  return (
    <Alert color="orange" variant="light" title="Audit chain not verified yet" role="status" data-testid="audit-verdict">
      <Text size="sm" data-testid="audit-verified">
        No full verify has run yet, so {plural(audit.appendedSince, 'event')} {audit.appendedSince === 1 ? 'is' : 'are'} unverified. One
        runs on a schedule, or verify now.
      </Text>
      {footer}
    </Alert>
  );
}

function MaintenanceCard({ kind, title, description, last }: { kind: 'cleanup' | 'recover'; title: string; description: string; last: MaintenanceRun | null }) {
  const run = useMaintenance(kind);
  const shown = run.data ?? last;
  return (
    <Paper withBorder p="md" radius="md">
      <Group justify="space-between" align="flex-start" mb="xs">
        <div>
          <Title order={2} size="h4">
            {title}
          </Title>
          <Text size="sm" c="gray.7">
            {description}
          </Text>
        </div>
        <Button onClick={() => run.mutate()} loading={run.isPending} variant="default">
          Run {title.toLowerCase()} now
        </Button>
      </Group>
      <FormError message={run.isError ? errorMessage(run.error) : null} />
      {run.isSuccess ? (
        <Text size="sm" c="teal.9" role="status" mb={4}>
          {title} finished.
        </Text>
      ) : null}
      {shown ? <RunSummary run={shown} /> : <Text size="sm">Never run yet.</Text>}
    </Paper>
  );
}

function RunSummary({ run }: { run: MaintenanceRun }) {
  const changes = Object.entries(run.changes);
  const changed = changes.filter(([, n]) => n > 0);
  return (
    <Stack gap={4}>
      <Text size="sm">
        Last run {formatAge(run.at)} <Text span c="gray.7" size="xs">({formatDateTime(run.at)})</Text>
      </Text>
      {changed.length === 0 ? (
        <Text size="sm" c="gray.7">
          Nothing needed changing.
        </Text>
      ) : (
        <Group gap={6}>
          {changed.map(([k, n]) => (
            <Badge key={k} variant="outline" color="gray.8">
              {k.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}: {n}
            </Badge>
          ))}
        </Group>
      )}
      {run.settled?.length ? (
        <Text size="xs" c="gray.7">
          Settled {run.settled.length} rotation{run.settled.length === 1 ? '' : 's'}: {run.settled.map((x) => `${STATUS_LABEL[x.to]} (${x.reason})`).join(', ')}
        </Text>
      ) : null}
    </Stack>
  );
}
