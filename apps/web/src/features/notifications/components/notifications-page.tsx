import { Alert, Button, CloseButton, Group, NativeSelect, Pagination, Stack, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, FormError, LoadingBlock } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { plural } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { type InboxFilter, unreadNotificationsQueryOptions, useInbox, useMarkAllRead } from '../api/notifications.api';
import { NotificationItem } from './notification-item';

const LIMIT = 20;

/**
 * The whole inbox, newest first. It stays current without reloading: the header's bell polls,
 * and whatever it sees new refreshes this list (notifications.api.ts).
 */
export function NotificationsPage() {
  const [filter, setFilter] = useState<InboxFilter>('all');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string | null>(null);
  const list = useInbox(filter, (page - 1) * LIMIT, LIMIT);
  // The bell's query (shared cache entry): the header already polls it.
  const unreadQ = useQuery(unreadNotificationsQueryOptions());
  const markAll = useMarkAllRead();
  const now = useNow(30_000);

  const unread = unreadQ.data?.unread ?? list.data?.unread ?? 0;
  const total = list.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / LIMIT));
  const current = Math.min(page, pages);

  return (
    <>
      <PageHeader
        title="Notifications"
        description="What needs your attention: requests, approvals and security events. New ones appear here and on the bell without reloading."
        actions={
          <Button
            variant="default"
            onClick={() => {
              setNotice(null);
              markAll.mutate(undefined, { onSuccess: (r) => setNotice(r.updated ? `Marked ${plural(r.updated, 'notification')} as read.` : 'Nothing was unread.') });
            }}
            loading={markAll.isPending}
            disabled={unread === 0}
          >
            Mark all as read
          </Button>
        }
      />
      <Stack gap="md">
        {notice ? (
          <Alert color="teal" variant="light" role="status">
            <Group justify="space-between" wrap="nowrap">
              <Text size="sm">{notice}</Text>
              <CloseButton aria-label="Dismiss message" onClick={() => setNotice(null)} />
            </Group>
          </Alert>
        ) : null}
        <FormError message={markAll.isError ? errorMessage(markAll.error) : null} />
        <NativeSelect
          label="Show"
          maw={280}
          value={filter}
          onChange={(e) => {
            setFilter(e.currentTarget.value as InboxFilter);
            setPage(1);
          }}
          data={[
            { value: 'all', label: 'All notifications' },
            { value: 'unread', label: 'Unread only' },
          ]}
        />
        {list.isPending ? <LoadingBlock label="Loading notifications…" /> : null}
        {list.isError && !list.data ? <ErrorBlock error={list.error} onRetry={() => list.refetch()} title="Could not load notifications" /> : null}
        {list.data ? (
          <>
            <Text size="sm" c="gray.7" data-testid="inbox-summary">
              {total === 0
                ? filter === 'unread'
                  ? 'You have no unread notifications.'
                  : 'No notifications yet.'
                : `${plural(total, filter === 'unread' ? 'unread notification' : 'notification')}${filter === 'all' ? `, ${unread} unread` : ''}.`}
            </Text>
            {list.data.items.length > 0 ? (
              <Stack component="ul" gap="sm" p={0} m={0} style={{ listStyle: 'none' }} aria-label="Notifications">
                {list.data.items.map((item) => (
                  <NotificationItem key={item.id} item={item} now={now} />
                ))}
              </Stack>
            ) : null}
            {pages > 1 ? (
              <Pagination total={pages} value={current} onChange={setPage} aria-label="Pages" getControlProps={(c) => ({ 'aria-label': `${c} page` })} />
            ) : null}
          </>
        ) : null}
      </Stack>
    </>
  );
}
