import type { SecretMeta } from '@keyturn/shared';
import { Badge, Button, Code, Group, Paper, Stack, Text } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { errorMessage } from '../../../lib/error-messages';
import { formatAge, formatDateTime } from '../../../lib/format';
import { vaultKeys } from '../../../lib/query-keys';
import { useNow } from '../../../lib/use-now';
import { secretQueryOptions, useSecret } from '../api/vault.api';

/** How long a revealed value stays on screen. */
export const REVEAL_SECONDS = 30;

interface Props {
  secret: SecretMeta;
  onEdit: (s: SecretMeta) => void;
  onDelete: (s: SecretMeta) => void;
}

export function SecretItem({ secret, onEdit, onDelete }: Props) {
  const qc = useQueryClient();
  const [revealed, setRevealed] = useState(false);
  const [revealedAt, setRevealedAt] = useState<number | null>(null);
  const [copyState, setCopyState] = useState<'idle' | 'copying' | 'copied' | 'failed'>('idle');
  const value = useSecret(secret.id, revealed);
  const now = useNow(1000);

  const hide = () => {
    setRevealed(false);
    setRevealedAt(null);
    qc.removeQueries({ queryKey: vaultKeys.secret(secret.id) });
  };

  useEffect(() => {
    if (value.data && revealed && revealedAt === null) setRevealedAt(Date.now());
  }, [value.data, revealed, revealedAt]);

  const left =
    revealedAt === null ? REVEAL_SECONDS : Math.min(REVEAL_SECONDS, Math.max(0, REVEAL_SECONDS - Math.floor((now - revealedAt) / 1000)));
  // biome-ignore lint/correctness/useExhaustiveDependencies: hide is re-created each render; `left` is the trigger.
  useEffect(() => {
    if (revealed && revealedAt !== null && left <= 0) hide();
  }, [left, revealed, revealedAt]);

  useEffect(() => {
    if (copyState !== 'copied' && copyState !== 'failed') return;
    const t = window.setTimeout(() => setCopyState('idle'), 2500);
    return () => window.clearTimeout(t);
  }, [copyState]);

  const copy = async () => {
    setCopyState('copying');
    try {
      const s = await qc.fetchQuery(secretQueryOptions(secret.id));
      await navigator.clipboard.writeText(s.value);
      setCopyState('copied');
    } catch {
      setCopyState('failed');
    } finally {
      if (!revealed) qc.removeQueries({ queryKey: vaultKeys.secret(secret.id) });
    }
  };

  return (
    <Paper component="li" withBorder p="md" radius="md" aria-label={secret.name} data-testid="secret-item">
      <Group justify="space-between" align="flex-start" gap="sm">
        <Stack gap={2} style={{ flex: '1 1 14rem', minWidth: 0 }}>
          <Text fw={600} style={{ overflowWrap: 'anywhere' }} data-testid="secret-name">
            {secret.name}
          </Text>
          <Group gap={6}>
            <Text size="xs" c="gray.7" title={formatDateTime(secret.updatedAt)}>
              Updated {formatAge(secret.updatedAt, now)}
            </Text>
            <Badge size="xs" variant="outline" color="gray.7">
              key v{secret.keyVersion}
            </Badge>
          </Group>
        </Stack>
        <Group gap={6} wrap="wrap">
          <Button
            size="xs"
            variant="outline"
            onClick={revealed ? hide : () => setRevealed(true)}
            loading={revealed && value.isPending}
            aria-expanded={revealed}
            aria-label={`${revealed ? 'Hide' : 'Reveal'} ${secret.name}`}
          >
            {revealed ? 'Hide' : 'Reveal'}
          </Button>
          <Button
            size="xs"
            variant="default"
            onClick={copy}
            loading={copyState === 'copying'}
            aria-label={`Copy ${secret.name}`}
          >
            {copyState === 'copied' ? 'Copied' : 'Copy'}
          </Button>
          <Button size="xs" variant="default" onClick={() => onEdit(secret)} aria-label={`Edit ${secret.name}`}>
            Edit
          </Button>
          <Button size="xs" variant="default" c="red.9" onClick={() => onDelete(secret)} aria-label={`Delete ${secret.name}`}>
            Delete
          </Button>
        </Group>
      </Group>
      <div aria-live="polite">
        {copyState === 'copied' ? (
          <Text size="xs" c="teal.9" mt={6}>
            Copied to the clipboard.
          </Text>
        ) : copyState === 'failed' ? (
          <Text size="xs" c="red.9" mt={6}>
            Could not copy: the browser refused clipboard access.
          </Text>
        ) : null}
        {revealed && value.isError ? (
          <Text size="sm" c="red.9" mt="xs" role="alert">
            {errorMessage(value.error)}
          </Text>
        ) : null}
        {revealed && value.data ? (
          <Stack gap={4} mt="sm">
            <Code block data-testid="secret-value" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere', maxHeight: 240, overflow: 'auto' }}>
              {value.data.value}
            </Code>
            <Text size="xs" c="gray.7">
              Hides automatically in {left} s.
            </Text>
          </Stack>
        ) : null}
      </div>
    </Paper>
  );
}
