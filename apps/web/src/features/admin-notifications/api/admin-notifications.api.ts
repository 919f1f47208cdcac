import {
  ChannelStatusSchema,
  type DeliveryStatus,
  DeliveryListSchema,
  OkSchema,
  type TestEmailResult,
  TestEmailBodySchema,
  TestEmailResultSchema,
} from '@keyturn/shared';
import { keepPreviousData, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { z } from 'zod';
import { request } from '../../../lib/api-client';
import { adminNotificationKeys } from '../../../lib/query-keys';

export { TestEmailBodySchema };
export type { TestEmailResult };

/** Channels and the queue change as the dispatcher works: keep watching them while the page is open. */
const POLL_MS = 15_000;

export const channelStatusQueryOptions = () =>
  queryOptions({
    queryKey: adminNotificationKeys.channels(),
    queryFn: ({ signal }) => request('/admin/api/notifications/channels', { schema: ChannelStatusSchema, signal }),
    refetchInterval: POLL_MS,
  });

export const useChannelStatus = () => useQuery(channelStatusQueryOptions());

/** Outgoing deliveries (email, webhooks) in any of `statuses` (all when empty), newest first. */
export const deliveryQueueQueryOptions = (statuses: readonly DeliveryStatus[], offset: number, limit: number) => {
  const status = statuses.join(',');
  return queryOptions({
    queryKey: adminNotificationKeys.queue(status, offset, limit),
    queryFn: ({ signal }) =>
      request('/admin/api/notifications/queue', { schema: DeliveryListSchema, query: { status, limit, offset }, signal }),
    placeholderData: keepPreviousData,
    refetchInterval: POLL_MS,
  });
};

export const useDeliveryQueue = (statuses: readonly DeliveryStatus[], offset: number, limit: number) =>
  useQuery(deliveryQueueQueryOptions(statuses, offset, limit));

/** A dead delivery goes back to pending; the counts and the list refresh. */
export function useResendDelivery() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      request(`/admin/api/notifications/queue/${encodeURIComponent(id)}/resend`, { method: 'POST', schema: OkSchema }),
    onSettled: () => qc.invalidateQueries({ queryKey: adminNotificationKeys.all }),
  });
}

/** Sends now, outside the queue; the answer is the SMTP server's reply, or why it failed. */
export function useSendTestEmail() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: z.infer<typeof TestEmailBodySchema>) =>
      request('/admin/api/notifications/test_email', { method: 'POST', body, schema: TestEmailResultSchema }),
    // A test email counts as a success or a failure of the channel.
    onSettled: () => qc.invalidateQueries({ queryKey: adminNotificationKeys.channels() }),
  });
}
