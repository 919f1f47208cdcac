import type { InboxItem } from '@keyturn/shared';
import { Badge, Button, Group, Paper, Stack, Text } from '@mantine/core';
import { useId } from 'react';
import { Link } from 'react-router';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { formatAge, formatDateTime } from '../../../lib/format';
import { useMe } from '../../auth/api/auth.api';
import { useMarkRead } from '../api/notifications.api';
import { isAdminPath, linkLabel, safeAppPath } from './labels';

const MESSAGES = { NOT_FOUND: 'This notification no longer exists. The list has been refreshed.' };

/**
 * One inbox item: title, body, when, a Security badge when it cannot be muted, "Mark as read"
 * while unread and, when it points somewhere in the app, a link there (following it marks it read).
 * The list item is named by its title; its buttons are described by it.
 */
export function NotificationItem({ item, now, compact = false, onNavigate }: { item: InboxItem; now: number; compact?: boolean; onNavigate?: () => void }) {
  const titleId = useId();
  const markRead = useMarkRead();
  const unread = item.readAt === null;
  const isAdmin = useMe().data?.user.role === 'admin';
  // One message may go to a user and to the admins alike: a user is not sent to an admin page.
  const link = safeAppPath(item.link);
  const path = link && (isAdmin || !isAdminPath(link)) ? link : null;

  return (
    <Paper
      component="li"
      withBorder
      radius="md"
      p={compact ? 'xs' : 'sm'}
      aria-labelledby={titleId}
      data-testid="notification"
      data-unread={unread ? 'true' : 'false'}
      style={unread ? { borderLeft: '4px solid var(--mantine-color-indigo-8)' } : undefined}
    >
      <Stack gap={4}>
        <Group gap={6} wrap="wrap" align="center">
          <Text id={titleId} fw={unread ? 700 : 500} size={compact ? 'sm' : 'md'} style={{ overflowWrap: 'anywhere' }}>
            {item.title}
          </Text>
          {item.security ? (
            <Badge color="red.9" variant="filled" size="sm" radius="sm" data-testid="security-badge">
              Security
            </Badge>
          ) : null}
          {unread ? (
            <Badge color="indigo.8" variant="outline" size="sm" radius="sm">
              Unread
            </Badge>
          ) : null}
        </Group>
        <Text size="sm" style={{ whiteSpace: 'pre-line', overflowWrap: 'anywhere' }} data-testid="notification-body">
          {item.body}
        </Text>
        <Text size="xs" c="gray.7">
          <time dateTime={item.createdAt} title={formatDateTime(item.createdAt)}>
            {formatAge(item.createdAt, now)}
          </time>
          {!unread && !compact ? ` · read ${formatAge(item.readAt, now)}` : ''}
        </Text>
        <FormError message={markRead.isError ? errorMessage(markRead.error, MESSAGES) : null} />
        {path || unread ? (
          <Group gap="xs" mt={2}>
            {path ? (
              <Button
                component={Link}
                to={path}
                size="xs"
                variant="light"
                aria-describedby={titleId}
                onClick={() => {
                  if (unread) markRead.mutate(item.id);
                  onNavigate?.();
                }}
              >
                {linkLabel(path)}
              </Button>
            ) : null}
            {unread ? (
              <Button size="xs" variant="default" aria-describedby={titleId} loading={markRead.isPending} onClick={() => markRead.mutate(item.id)}>
                Mark as read
              </Button>
            ) : null}
          </Group>
        ) : null}
      </Stack>
    </Paper>
  );
}
