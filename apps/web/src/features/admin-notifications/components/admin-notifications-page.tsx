import type { ChannelStatus, Delivery, DeliveryChannel, DeliveryStatus } from '@keyturn/shared';
import {
  Alert,
  Badge,
  Button,
  CloseButton,
  Code,
  Group,
  NativeSelect,
  Pagination,
  Paper,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { type ReactNode, useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, FormError, LoadingBlock } from '../../../components/query-state';
import { errorMessage, fieldErrors } from '../../../lib/error-messages';
import { formatAge, formatDateTime, plural } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { useZodForm } from '../../../lib/use-zod-form';
import { DELIVERY_STATUS_COLOR, DELIVERY_STATUS_LABEL, EVENT_LABEL } from '../../notifications/components/labels';
import { TestEmailBodySchema, useChannelStatus, useDeliveryQueue, useResendDelivery, useSendTestEmail } from '../api/admin-notifications.api';

const LIMIT = 50;

type QueueFilter = 'open' | 'all' | DeliveryStatus;
const FILTERS: { value: QueueFilter; label: string; statuses: readonly DeliveryStatus[] }[] = [
  { value: 'open', label: 'Not delivered (pending, retrying, dead)', statuses: ['pending', 'retrying', 'dead'] },
  { value: 'pending', label: 'Pending', statuses: ['pending'] },
  { value: 'retrying', label: 'Retrying', statuses: ['retrying'] },
  { value: 'dead', label: 'Dead', statuses: ['dead'] },
  { value: 'sent', label: 'Sent', statuses: ['sent'] },
  { value: 'all', label: 'All', statuses: [] },
];

const CHANNEL_LABEL: Record<DeliveryChannel, string> = { email: 'Email', webhook: 'Webhook' };

/** Who a delivery goes to, in words: an email address, or a webhook endpoint (by its id). */
const target = (d: Delivery): string => (d.channel === 'email' ? d.recipient : `webhook ${d.recipient.slice(0, 8)}`);

const RESEND_MESSAGES = {
  NOT_FOUND: 'That delivery no longer exists. The queue has been refreshed.',
  INVALID_STATE: 'Only a dead delivery can be re-sent; this one is already queued or sent. The queue has been refreshed.',
};

export function AdminNotificationsPage() {
  const channels = useChannelStatus();
  return (
    <>
      <PageHeader
        title="Notification delivery"
        description="How notifications reach people: the in-app inbox, always on, and email when a mail server is configured. Failed deliveries are retried; those that ran out of retries are dead until you re-send them."
      />
      <Stack gap="lg">
        {channels.isPending ? <LoadingBlock label="Loading channel status…" /> : null}
        {channels.isError && !channels.data ? (
          <ErrorBlock error={channels.error} onRetry={() => channels.refetch()} title="Could not load the channel status" />
        ) : null}
        {channels.data ? <Channels s={channels.data} /> : null}
        <Queue emailEnabled={channels.data?.email.enabled ?? null} />
        <TestEmail configured={channels.data?.email.enabled ?? null} />
      </Stack>
    </>
  );
}

function Fact({ term, children, testId }: { term: string; children: ReactNode; testId?: string }) {
  return (
    <div>
      <Text component="dt" size="xs" c="gray.7">
        {term}
      </Text>
      <Text component="dd" m={0} size="sm" style={{ overflowWrap: 'anywhere' }} data-testid={testId}>
        {children}
      </Text>
    </div>
  );
}

function When({ iso, now }: { iso: string | null; now: number }) {
  if (!iso) return <>Never</>;
  return (
    <time dateTime={iso} title={formatAge(iso, now)}>
      {formatDateTime(iso)}
    </time>
  );
}

function Channels({ s }: { s: ChannelStatus }) {
  const now = useNow(30_000);
  const { email, queue } = s;
  return (
    <>
      {email.degraded ? (
        <Alert color="yellow" variant="light" role="alert" title="Email is failing" data-testid="email-degraded">
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            No email has been delivered for more than 15 minutes
            {email.lastFailureAt ? `; the last attempt failed on ${formatDateTime(email.lastFailureAt)}` : ''}.
            {' '}Notifications still reach the in-app inbox; emails are retried and kept in the queue below.
          </Text>
          {email.lastError ? (
            <Text size="sm" mt={4} style={{ overflowWrap: 'anywhere' }}>
              The mail server said: <Code>{email.lastError}</Code>
            </Text>
          ) : null}
        </Alert>
      ) : null}

      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
        <Paper withBorder p="md" radius="md" component="section" aria-labelledby="channel-inbox">
          <Group justify="space-between" mb="xs">
            <Title order={2} size="h4" id="channel-inbox">
              In-app inbox
            </Title>
            <Badge color="teal.9" variant="filled" data-testid="inbox-channel-state">
              On
            </Badge>
          </Group>
          <Text size="sm" c="gray.7">
            Always on, with no mail server needed: every notification reaches the bell in its recipient's header.
          </Text>
        </Paper>

        <Paper withBorder p="md" radius="md" component="section" aria-labelledby="channel-email">
          <Group justify="space-between" mb="xs">
            <Title order={2} size="h4" id="channel-email">
              Email
            </Title>
            <Badge color={email.enabled ? (email.degraded ? '#a13c07' : 'teal.9') : 'gray.7'} variant="filled" data-testid="email-channel-state">
              {email.enabled ? (email.degraded ? 'Failing' : 'Configured') : 'Not configured'}
            </Badge>
          </Group>
          {email.enabled ? (
            <SimpleGrid cols={{ base: 1, xs: 2 }} spacing="xs" component="dl" m={0}>
              <Fact term="From address" testId="email-from">
                {email.from ?? '—'}
              </Fact>
              <Fact term="Last delivered" testId="email-last-success">
                <When iso={email.lastSuccessAt} now={now} />
              </Fact>
              <Fact term="Last failure" testId="email-last-failure">
                <When iso={email.lastFailureAt} now={now} />
              </Fact>
              {email.lastError ? (
                <Fact term="Last error">
                  <Code block style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }} data-testid="email-last-error">
                    {email.lastError}
                  </Code>
                </Fact>
              ) : null}
            </SimpleGrid>
          ) : (
            <Text size="sm" c="gray.7">
              No mail server is configured. Set <Code>SMTP_URL</Code> and <Code>MAIL_FROM</Code> on the server to send email; until then,
              notifications reach people through the in-app inbox only.
            </Text>
          )}
        </Paper>
      </SimpleGrid>

      <Paper withBorder p="md" radius="md" component="section" aria-labelledby="queue-counts">
        <Title order={2} size="h4" mb="sm" id="queue-counts">
          Outgoing queue
        </Title>
        <SimpleGrid cols={{ base: 3 }} spacing="xs" component="dl" m={0} maw={480}>
          {(['pending', 'retrying', 'dead'] as const).map((k) => (
            <div key={k}>
              <Text component="dt" size="xs" c="gray.7">
                {DELIVERY_STATUS_LABEL[k]}
              </Text>
              <Text component="dd" m={0} fw={700} size="lg" c={k === 'dead' && queue.dead > 0 ? 'red.9' : undefined} data-testid={`queue-count-${k}`}>
                {queue[k]}
              </Text>
            </div>
          ))}
        </SimpleGrid>
      </Paper>
    </>
  );
}

function Queue({ emailEnabled }: { emailEnabled: boolean | null }) {
  const [filter, setFilter] = useState<QueueFilter>('open');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string | null>(null);
  const statuses = FILTERS.find((f) => f.value === filter)?.statuses ?? [];
  const list = useDeliveryQueue(statuses, (page - 1) * LIMIT, LIMIT);
  const resend = useResendDelivery();
  const now = useNow(30_000);
  const total = list.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / LIMIT));

  const onResend = (d: Delivery) => {
    setNotice(null);
    resend.mutate(d.id, { onSuccess: () => setNotice(`Queued again: ${EVENT_LABEL[d.event].toLowerCase()} to ${target(d)}.`) });
  };

  return (
    <Stack gap="sm" component="section" aria-labelledby="queue-title">
      <Title order={2} size="h4" id="queue-title">
        Outgoing deliveries
      </Title>
      {notice ? (
        <Alert color="teal" variant="light" role="status">
          <Group justify="space-between" wrap="nowrap">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              {notice}
            </Text>
            <CloseButton aria-label="Dismiss message" onClick={() => setNotice(null)} />
          </Group>
        </Alert>
      ) : null}
      <FormError message={resend.isError ? errorMessage(resend.error, RESEND_MESSAGES) : null} />
      <NativeSelect
        label="Status"
        maw={360}
        value={filter}
        onChange={(e) => {
          setFilter(e.currentTarget.value as QueueFilter);
          setPage(1);
        }}
        data={FILTERS.map(({ value, label }) => ({ value, label }))}
      />
      {list.isPending ? <LoadingBlock label="Loading the queue…" /> : null}
      {list.isError && !list.data ? <ErrorBlock error={list.error} onRetry={() => list.refetch()} title="Could not load the queue" /> : null}
      {list.data ? (
        <>
          <Text size="sm" c="gray.7" data-testid="queue-summary">
            {total === 0
              ? emailEnabled === false
                ? 'Nothing is queued. Email is not configured.'
                : filter === 'open'
                ? 'Nothing is waiting: everything was delivered.'
                : 'No deliveries match this filter.'
              : `${plural(total, 'delivery', 'deliveries')}, newest first.`}
          </Text>
          {list.data.items.length > 0 ? (
            // Focusable and named: on a narrow screen it scrolls sideways, and the keyboard must reach it.
            <Table.ScrollContainer minWidth={1000} type="native" tabIndex={0} role="region" aria-label="Outgoing deliveries (scrolls sideways)">
              <Table striped highlightOnHover verticalSpacing="xs" fz="sm" aria-label="Outgoing deliveries">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">Event</Table.Th>
                    <Table.Th scope="col">Channel</Table.Th>
                    <Table.Th scope="col">Recipient</Table.Th>
                    <Table.Th scope="col">Status</Table.Th>
                    <Table.Th scope="col">Attempts</Table.Th>
                    <Table.Th scope="col">Next attempt</Table.Th>
                    <Table.Th scope="col">Last error</Table.Th>
                    <Table.Th scope="col">Queued</Table.Th>
                    <Table.Th scope="col">Sent</Table.Th>
                    <Table.Th scope="col">
                      <span className="kt-visually-hidden">Actions</span>
                    </Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.data.items.map((d) => (
                    <Table.Tr key={d.id} data-testid="delivery-row">
                      <Table.Td>{EVENT_LABEL[d.event]}</Table.Td>
                      <Table.Td>{CHANNEL_LABEL[d.channel]}</Table.Td>
                      <Table.Td style={{ overflowWrap: 'anywhere', minWidth: 160 }} title={d.channel === 'webhook' ? `Webhook endpoint ${d.recipient}` : undefined}>
                        {target(d)}
                      </Table.Td>
                      <Table.Td style={{ minWidth: 100 }}>
                        <Badge color={DELIVERY_STATUS_COLOR[d.status]} variant="filled" size="sm" radius="sm" data-testid="delivery-status">
                          {DELIVERY_STATUS_LABEL[d.status]}
                        </Badge>
                      </Table.Td>
                      <Table.Td>{d.attempts}</Table.Td>
                      <Table.Td style={{ whiteSpace: 'nowrap' }}>{d.nextAttemptAt && d.status !== 'sent' && d.status !== 'dead' ? <When iso={d.nextAttemptAt} now={now} /> : '—'}</Table.Td>
                      <Table.Td style={{ minWidth: 180, maxWidth: 280, overflowWrap: 'anywhere' }}>{d.lastError ?? '—'}</Table.Td>
                      <Table.Td style={{ whiteSpace: 'nowrap' }}>
                        <When iso={d.createdAt} now={now} />
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: 'nowrap' }}>{d.sentAt ? <When iso={d.sentAt} now={now} /> : '—'}</Table.Td>
                      <Table.Td>
                        {d.status === 'dead' ? (
                          <Button
                            size="xs"
                            variant="default"
                            aria-label={`Re-send ${EVENT_LABEL[d.event].toLowerCase()} to ${target(d)}`}
                            loading={resend.isPending && resend.variables === d.id}
                            disabled={resend.isPending && resend.variables !== d.id}
                            onClick={() => onResend(d)}
                          >
                            Re-send
                          </Button>
                        ) : null}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          ) : null}
          {pages > 1 ? (
            <Pagination total={pages} value={Math.min(page, pages)} onChange={setPage} aria-label="Pages" getControlProps={(c) => ({ 'aria-label': `${c} page` })} />
          ) : null}
        </>
      ) : null}
    </Stack>
  );
}

function TestEmail({ configured }: { configured: boolean | null }) {
  const send = useSendTestEmail();
  const form = useZodForm(TestEmailBodySchema, { to: '' }, { toInput: (v) => ({ to: v.to.trim() || undefined }) });
  const serverFields = fieldErrors(send.error);
  const submit = form.onSubmit((body) => send.mutate(body));
  const result = send.data;

  return (
    <Paper withBorder p="md" radius="md" maw={640} component="section" aria-labelledby="test-email-title">
      <Title order={2} size="h4" mb={4} id="test-email-title">
        Send a test email
      </Title>
      <Text size="sm" c="gray.7" mb="sm">
        Sends one email now, outside the queue, and shows what the mail server answered.
        {configured === false ? ' No mail server is configured, so it can only tell you that.' : ''}
      </Text>
      <form noValidate onSubmit={submit} aria-labelledby="test-email-title">
        <Stack gap="sm">
          <TextInput
            label="Send to (optional)"
            description="Leave empty to send it to your own address."
            type="email"
            autoComplete="off"
            spellCheck={false}
            {...form.field('to')}
            error={form.errors.to ?? serverFields.to}
          />
          <FormError message={send.isError ? errorMessage(send.error) : null} />
          <Group>
            <Button type="submit" loading={send.isPending}>
              Send test email
            </Button>
          </Group>
          {result && !send.isPending ? (
            result.ok ? (
              <Alert color="teal" variant="light" role="status" title="Test email sent" data-testid="test-email-result">
                <Text size="sm">The mail server answered:</Text>
                <Code block mt={4} style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }} data-testid="test-email-response">
                  {result.response}
                </Code>
              </Alert>
            ) : (
              <Alert color="red" variant="light" role="alert" title="Test email failed" data-testid="test-email-result">
                <Code block style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }} data-testid="test-email-response">
                  {result.response}
                </Code>
              </Alert>
            )
          ) : null}
        </Stack>
      </form>
    </Paper>
  );
}
