import type { SecretMeta } from '@keyturn/shared';
import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { useDeleteSecret } from '../api/vault.api';

export function DeleteSecretModal({ secret, onClose }: { secret: SecretMeta | null; onClose: () => void }) {
  const del = useDeleteSecret();
  const close = () => {
    del.reset();
    onClose();
  };
  return (
    <Modal opened={secret !== null} onClose={close} title="Delete secret?" centered>
      {secret ? (
        <Stack gap="md">
          <Text style={{ overflowWrap: 'anywhere' }}>
            Delete <strong>{secret.name}</strong>? This cannot be undone.
          </Text>
          <FormError message={del.isError ? errorMessage(del.error) : null} />
          <Group justify="flex-end">
            <Button variant="default" onClick={close} data-autofocus>
              Keep it
            </Button>
            <Button color="red.9" loading={del.isPending} onClick={() => del.mutate(secret.id, { onSuccess: close })}>
              Delete
            </Button>
          </Group>
        </Stack>
      ) : null}
    </Modal>
  );
}
