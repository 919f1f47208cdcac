import { InboxListSchema, InboxReadAllResultSchema, OkSchema } from '@keyturn/shared';
import { keepPreviousData, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { request } from '../../../lib/api-client';
import { notificationKeys } from '../../../lib/query-keys';

/** How often the bell asks for new items: new ones show up without reloading the page. */
export const INBOX_POLL_MS = 10_000;
/** The most recent unread items the bell's popover shows; the notifications page has the rest. */
export const BELL_ITEMS = 5;

export type InboxFilter = 'all' | 'unread';

/** The unread count and the newest unread items, polled for the header's bell. */
export const unreadNotificationsQueryOptions = () =>
  queryOptions({
    queryKey: notificationKeys.unread(),
    queryFn: ({ signal }) =>
      request('/api/notifications', { schema: InboxListSchema, query: { unread: 'true', limit: BELL_ITEMS, offset: 0 }, signal }),
    refetchInterval: INBOX_POLL_MS,
  });

/**
 * The bell's poll. When it sees something new (the count or the newest item changed), the
 * notifications page's lists are refreshed too, so an open inbox never needs a reload.
 */
export function useUnreadNotifications() {
  const qc = useQueryClient();
  const q = useQuery(unreadNotificationsQueryOptions());
  const signature = q.data ? `${q.data.unread}:${q.data.items[0]?.id ?? ''}` : null;
  const seen = useRef<string | null>(null);
  useEffect(() => {
    if (signature === null) return;
    if (seen.current !== null && seen.current !== signature) void qc.invalidateQueries({ queryKey: notificationKeys.lists() });
    seen.current = signature;
  }, [signature, qc]);
  return q;
}

/** One page of the inbox, newest first. */
export const inboxQueryOptions = (filter: InboxFilter, offset: number, limit: number) =>
  queryOptions({
    queryKey: notificationKeys.list(filter, offset, limit),
    queryFn: ({ signal }) =>
      request('/api/notifications', {
        schema: InboxListSchema,
        query: { unread: filter === 'unread' ? 'true' : undefined, limit, offset },
        signal,
      }),
    placeholderData: keepPreviousData,
  });

export const useInbox = (filter: InboxFilter, offset: number, limit: number) => useQuery(inboxQueryOptions(filter, offset, limit));

/** The bell, the popover and the page all read the inbox: a change refreshes every one of them. */
function useInvalidateInbox() {
  const qc = useQueryClient();
  return () => qc.invalidateQueries({ queryKey: notificationKeys.all });
}

export function useMarkRead() {
  const invalidate = useInvalidateInbox();
  return useMutation({
    mutationFn: (id: string) => request(`/api/notifications/${encodeURIComponent(id)}/read`, { method: 'POST', schema: OkSchema }),
    onSettled: invalidate,
  });
}

export function useMarkAllRead() {
  const invalidate = useInvalidateInbox();
  return useMutation({
    mutationFn: () => request('/api/notifications/read_all', { method: 'POST', schema: InboxReadAllResultSchema }),
    onSettled: invalidate,
  });
}
