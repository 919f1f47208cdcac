import { Alert, Button, Center, Group, Loader, Text } from '@mantine/core';
import { errorMessage } from '../lib/error-messages';

export function LoadingBlock({ label = 'Loading…' }: { label?: string }) {
  return (
    <Center py="xl" role="status" aria-live="polite">
      <Group gap="sm">
        <Loader size="sm" aria-hidden />
        <Text c="gray.7">{label}</Text>
      </Group>
    </Center>
  );
}

export function ErrorBlock({ error, onRetry, title = 'Could not load this' }: { error: unknown; onRetry?: () => void; title?: string }) {
  return (
    <Alert color="red" title={title} role="alert" variant="light">
      <Text size="sm">{errorMessage(error)}</Text>
      {onRetry ? (
        <Button mt="sm" size="xs" variant="outline" color="red" onClick={onRetry}>
          Try again
        </Button>
      ) : null}
    </Alert>
  );
}

/** An inline error for a form or action, announced to screen readers. */
export function FormError({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <Alert color="red" variant="light" role="alert" p="sm">
      <Text size="sm">{message}</Text>
    </Alert>
  );
}
