import type { SecretMeta } from '@keyturn/shared';
import { Button, Group, NativeSelect, Paper, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useMemo, useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, LoadingBlock } from '../../../components/query-state';
import { plural } from '../../../lib/format';
import { useSecrets } from '../api/vault.api';
import { DeleteSecretModal } from './delete-secret-modal';
import { AddSecretModal, EditSecretModal } from './secret-form-modal';
import { SecretItem } from './secret-item';

type Sort = 'updated' | 'name' | 'created';

const sorters: Record<Sort, (a: SecretMeta, b: SecretMeta) => number> = {
  updated: (a, b) => b.updatedAt.localeCompare(a.updatedAt),
  created: (a, b) => a.createdAt.localeCompare(b.createdAt),
  name: (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }),
};

export function VaultPage() {
  const secrets = useSecrets();
  const [adding, add] = useDisclosure(false);
  const [editing, setEditing] = useState<SecretMeta | null>(null);
  const [deleting, setDeleting] = useState<SecretMeta | null>(null);
  const [search, setSearch] = useState('');
  const [sort, setSort] = useState<Sort>('updated');

  const items = secrets.data?.items;
  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (items ?? []).filter((s) => !q || s.name.toLowerCase().includes(q)).sort(sorters[sort]);
  }, [items, search, sort]);

  return (
    <>
      <PageHeader
        title="Vault"
        description="Your secrets, encrypted with your own key."
        actions={<Button onClick={add.open}>Add secret</Button>}
      />

      {secrets.isPending ? <LoadingBlock label="Loading your secrets…" /> : null}
      {secrets.isError ? <ErrorBlock error={secrets.error} onRetry={() => secrets.refetch()} title="Could not load your secrets" /> : null}

      {items && items.length === 0 ? (
        <Paper withBorder p="xl" radius="md" ta="center">
          <Title order={2} size="h4">
            Your vault is empty
          </Title>
          <Text c="gray.7" mt={4} mb="md">
            Add your first secret: an API key, a password, a recovery code.
          </Text>
          <Button onClick={add.open}>Add your first secret</Button>
        </Paper>
      ) : null}

      {items && items.length > 0 ? (
        <Stack gap="sm">
          <Group gap="sm" align="flex-end" role="search">
            <TextInput
              label="Search secrets"
              placeholder="Filter by name"
              value={search}
              onChange={(e) => setSearch(e.currentTarget.value)}
              style={{ flex: '1 1 16rem' }}
              type="search"
            />
            <NativeSelect
              label="Sort by"
              value={sort}
              onChange={(e) => setSort(e.currentTarget.value as Sort)}
              data={[
                { value: 'updated', label: 'Recently updated' },
                { value: 'name', label: 'Name (A–Z)' },
                { value: 'created', label: 'Oldest first' },
              ]}
            />
          </Group>
          <Title order={2} size="h5" c="gray.8" aria-live="polite">
            {search.trim() ? `${shown.length} of ${plural(items.length, 'secret')}` : plural(items.length, 'secret')}
          </Title>
          {shown.length === 0 ? (
            <Paper withBorder p="lg" radius="md" ta="center">
              <Text>No secrets match “{search.trim()}”.</Text>
              <Button variant="subtle" mt="xs" onClick={() => setSearch('')}>
                Clear search
              </Button>
            </Paper>
          ) : (
            <Stack component="ul" gap="sm" p={0} m={0} style={{ listStyle: 'none' }} aria-label="Secrets">
              {shown.map((s) => (
                <SecretItem key={s.id} secret={s} onEdit={setEditing} onDelete={setDeleting} />
              ))}
            </Stack>
          )}
        </Stack>
      ) : null}

      <AddSecretModal opened={adding} onClose={add.close} />
      <EditSecretModal secret={editing} onClose={() => setEditing(null)} />
      <DeleteSecretModal secret={deleting} onClose={() => setDeleting(null)} />
    </>
  );
}
