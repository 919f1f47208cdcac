import { ActionIcon, Anchor, Button, Group, Indicator, Popover, Stack, Text } from '@mantine/core';
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { plural } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { useMarkAllRead, useUnreadNotifications } from '../api/notifications.api';
import { NotificationItem } from './notification-item';

function BellIcon() {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
      <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
      <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
    </svg>
  );
}

/** "Notifications, 3 unread": the button's name carries the count the badge shows. */
export const bellLabel = (unread: number): string => (unread > 0 ? `Notifications, ${unread} unread` : 'Notifications');

/**
 * The header's bell: the unread count as a badge, refreshed every few seconds, and a popover
 * with the newest unread items, "Mark all as read" and a way to the whole inbox.
 */
export function NotificationBell() {
  const unreadQ = useUnreadNotifications();
  const markAll = useMarkAllRead();
  const [opened, setOpened] = useState(false);
  const now = useNow(30_000);
  const headingId = useId();
  const dropdownRef = useRef<HTMLDivElement>(null);
  const unread = unreadQ.data?.unread ?? 0;
  const items = unreadQ.data?.items ?? [];

  // Announce new arrivals politely (not the first count, nor a count going down).
  const [announcement, setAnnouncement] = useState('');
  const lastCount = useRef<number | null>(null);
  useEffect(() => {
    if (!unreadQ.data) return;
    const n = unreadQ.data.unread;
    if (lastCount.current !== null && n > lastCount.current) setAnnouncement(`${plural(n - lastCount.current, 'new notification')}. ${n} unread.`);
    lastCount.current = n;
  }, [unreadQ.data]);

  // Marking an item read removes it from this list: keep focus inside the popover, not on <body>.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when the list shrinks or grows.
  useEffect(() => {
    if (!opened) return;
    const active = document.activeElement;
    if (!active || active === document.body) dropdownRef.current?.focus();
  }, [items.length, opened]);

  const close = () => setOpened(false);

  return (
    <>
      <Popover opened={opened} onChange={setOpened} position="bottom-end" withArrow shadow="md" width={380} trapFocus returnFocus>
        <Popover.Target>
          <ActionIcon
            variant="default"
            size="lg"
            radius="md"
            aria-label={bellLabel(unread)}
            onClick={() => setOpened((o) => !o)}
            data-testid="notification-bell"
          >
            <Indicator
              label={unread}
              maxValue={99}
              disabled={unread === 0}
              size={16}
              offset={2}
              color="red.9"
              inline
              data-testid="notification-count"
            >
              <BellIcon />
            </Indicator>
          </ActionIcon>
        </Popover.Target>
        <Popover.Dropdown aria-labelledby={headingId} ref={dropdownRef} p="sm" maw="calc(100vw - 16px)">
          <Stack gap="sm">
            <Group justify="space-between" wrap="nowrap">
              <Text id={headingId} fw={700}>
                Notifications
              </Text>
              <Button size="xs" variant="subtle" onClick={() => markAll.mutate()} loading={markAll.isPending} disabled={unread === 0}>
                Mark all as read
              </Button>
            </Group>
            <FormError message={markAll.isError ? errorMessage(markAll.error) : null} />
            {unreadQ.isError && !unreadQ.data ? <FormError message={errorMessage(unreadQ.error)} /> : null}
            {unreadQ.data && items.length === 0 ? (
              <Text size="sm" c="gray.7">
                You have no unread notifications.
              </Text>
            ) : null}
            {items.length > 0 ? (
              <Stack component="ul" gap="xs" p={0} m={0} mah={420} style={{ listStyle: 'none', overflowY: 'auto' }} aria-label="Unread notifications">
                {items.map((item) => (
                  <NotificationItem key={item.id} item={item} now={now} compact onNavigate={close} />
                ))}
              </Stack>
            ) : null}
            {unread > items.length ? (
              <Text size="xs" c="gray.7">
                {plural(unread - items.length, 'more unread notification')} on the notifications page.
              </Text>
            ) : null}
            <Anchor component={Link} to="/notifications" size="sm" c="indigo.9" onClick={close}>
              See all notifications
            </Anchor>
          </Stack>
        </Popover.Dropdown>
      </Popover>
      <span className="kt-visually-hidden" aria-live="polite">
        {announcement}
      </span>
    </>
  );
}
