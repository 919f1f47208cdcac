import { CreateSecretBodySchema, type SecretMeta, UpdateSecretBodySchema } from '@keyturn/shared';
import { Button, Group, Modal, Stack, Text, Textarea, TextInput } from '@mantine/core';
import { useEffect, useRef } from 'react';
import { ErrorBlock, FormError, LoadingBlock } from '../../../components/query-state';
import { errorMessage, fieldErrors } from '../../../lib/error-messages';
import { charCount } from '../../../lib/format';
import { type ZodForm, useZodForm } from '../../../lib/use-zod-form';
import { useCreateSecret, useSecret, useUpdateSecret } from '../api/vault.api';

const NAME_MAX = 200;

/** The name and value inputs shared by the add and edit forms. */
function SecretFields({
  form,
  server,
  valueRequired = false,
}: {
  form: ZodForm<{ name: string; value: string }, unknown>;
  server: Record<string, string>;
  valueRequired?: boolean;
}) {
  return (
    <>
      <TextInput
        label="Name"
        description={`${charCount(form.values.name)} / ${NAME_MAX}`}
        required
        data-autofocus
        {...form.field('name')}
        error={form.errors.name ?? server.name}
      />
      <Textarea
        label="Value"
        required={valueRequired}
        autosize
        minRows={3}
        maxRows={12}
        spellCheck={false}
        autoComplete="off"
        styles={{ input: { fontFamily: 'var(--mantine-font-family-monospace)' } }}
        {...form.field('value')}
        error={form.errors.value ?? server.value}
      />
    </>
  );
}

export function AddSecretModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const create = useCreateSecret();
  const form = useZodForm(CreateSecretBodySchema, { name: '', value: '' });
  const close = () => {
    form.reset();
    create.reset();
    onClose();
  };
  const server = fieldErrors(create.error);
  return (
    <Modal opened={opened} onClose={close} title="Add a secret" centered size="lg">
      <form noValidate onSubmit={form.onSubmit((body) => create.mutate(body, { onSuccess: close }))}>
        <Stack gap="sm">
          <SecretFields form={form} server={server} valueRequired />
          <Text size="xs" c="gray.7">
            The name and the value are encrypted with your key before they are stored.
          </Text>
          <FormError message={create.isError ? errorMessage(create.error, { PAYLOAD_TOO_LARGE: 'That value is larger than this server allows.' }) : null} />
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Save secret
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export function EditSecretModal({ secret, onClose }: { secret: SecretMeta | null; onClose: () => void }) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title="Edit secret" centered size="lg">
      {secret ? <EditSecretForm meta={secret} onClose={onClose} /> : null}
    </Modal>
  );
}

function EditSecretForm({ meta, onClose }: { meta: SecretMeta; onClose: () => void }) {
  const current = useSecret(meta.id, true);
  const update = useUpdateSecret(meta.id);
  const original = current.data;
  const form = useZodForm(
    UpdateSecretBodySchema,
    { name: meta.name, value: '' },
    {
      toInput: (v) => ({
        name: v.name !== original?.name ? v.name : undefined,
        value: v.value !== original?.value ? v.value : undefined,
      }),
    },
  );
  const loaded = useRef(false);
  useEffect(() => {
    if (original && !loaded.current) {
      loaded.current = true;
      form.reset({ name: original.name, value: original.value });
    }
  }, [original, form.reset]);

  if (current.isPending) return <LoadingBlock label="Decrypting…" />;
  if (current.isError) return <ErrorBlock error={current.error} onRetry={() => current.refetch()} />;
  const unchanged = form.values.name === current.data.name && form.values.value === current.data.value;
  const server = fieldErrors(update.error);

  return (
    <form noValidate onSubmit={form.onSubmit((body) => (unchanged ? onClose() : update.mutate(body, { onSuccess: onClose })))}>
      <Stack gap="sm">
        <SecretFields form={form} server={server} />
        <FormError message={update.isError ? errorMessage(update.error) : null} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" loading={update.isPending}>
            Save changes
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
