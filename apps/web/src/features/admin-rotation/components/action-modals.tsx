import { AdminPasswordBodySchema, REASON_MAX, RejectBodySchema, type RotationToken } from '@keyturn/shared';
import { Alert, Button, Group, Modal, PasswordInput, Stack, Text, Textarea } from '@mantine/core';
import type { ReactNode } from 'react';
import { Fingerprint } from '../../../components/fingerprint';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { charCount } from '../../../lib/format';
import { useZodForm } from '../../../lib/use-zod-form';
import { useFinalize, useReject, useRestore } from '../api/admin-rotation.api';
import { ADMIN_MESSAGES } from './admin-messages';

export function RejectModal({ token, onClose, onDone }: { token: RotationToken | null; onClose: () => void; onDone: (msg: string) => void }) {
  const reject = useReject();
  const form = useZodForm(RejectBodySchema, { reason: '' });
  const close = () => {
    reject.reset();
    form.reset();
    onClose();
  };
  const count = charCount(form.values.reason);
  return (
    <Modal opened={token !== null} onClose={close} title="Reject key rotation" centered size="lg">
      {token ? (
        <form noValidate onSubmit={form.onSubmit((body) => reject.mutate({ tokenId: token.id, body }, { onSuccess: () => { onDone(`Rejected the request from ${token.userEmail}.`); close(); } }))}>
          <Stack gap="sm">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              Reject the request from <strong>{token.userEmail}</strong>. They will see your reason.
            </Text>
            <Fingerprint value={token.fingerprint} />
            <Textarea label="Reason for rejection" required autosize minRows={3} data-autofocus {...form.field('reason')} />
            <Text size="xs" c={count > REASON_MAX ? 'red.9' : 'gray.7'} ta="right">
              {count} / {REASON_MAX} characters
            </Text>
            <FormError message={reject.isError ? errorMessage(reject.error, ADMIN_MESSAGES) : null} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" color="red.9" loading={reject.isPending}>
                Reject request
              </Button>
            </Group>
          </Stack>
        </form>
      ) : null}
    </Modal>
  );
}

type PasswordAction = ReturnType<typeof useFinalize> | ReturnType<typeof useRestore>;

function PasswordActionModal(props: {
  token: RotationToken | null;
  onClose: () => void;
  title: string;
  confirmLabel: string;
  color?: string;
  action: PasswordAction;
  children: ReactNode;
  done: (data: unknown) => string;
  onDone: (msg: string) => void;
}) {
  const { token, onClose, action } = props;
  const form = useZodForm(AdminPasswordBodySchema, { adminPassword: '' });
  const close = () => {
    action.reset();
    form.reset();
    onClose();
  };
  return (
    <Modal opened={token !== null} onClose={close} title={props.title} centered size="lg">
      {token ? (
        <form noValidate onSubmit={form.onSubmit((body) => action.mutate(
              { tokenId: token.id, body },
              {
                onSuccess: (data: unknown) => {
                  props.onDone(props.done(data));
                  close();
                },
              },
            ))}>
          <Stack gap="sm">
            {props.children}
            <PasswordInput label="Your admin password" autoComplete="current-password" required data-autofocus {...form.field('adminPassword')} />
            <FormError message={action.isError ? errorMessage(action.error, ADMIN_MESSAGES) : null} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" color={props.color} loading={action.isPending}>
                {props.confirmLabel}
              </Button>
            </Group>
          </Stack>
        </form>
      ) : null}
    </Modal>
  );
}

export function FinalizeModal({ token, onClose, onDone }: { token: RotationToken | null; onClose: () => void; onDone: (msg: string) => void }) {
  const finalize = useFinalize();
  return (
    <PasswordActionModal token={token} onClose={onClose} title="Finalize key rotation" confirmLabel="Finalize"
      action={finalize}
      onDone={onDone}
      done={() => `Finalized the rotation of ${token?.userEmail ?? 'the user'}.`}
    >
      {token ? (
        <>
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            Finalize the rotation of <strong>{token.userEmail}</strong> (key v{token.fromKeyVersion} → v{token.toKeyVersion ?? '?'}).
          </Text>
          <Alert color="orange" variant="light" role="note">
            <Text size="sm">
              Finalizing seals the recovery copy of the new key and discards the previous one. After this, the previous keys can no
              longer be restored.
            </Text>
          </Alert>
        </>
      ) : null}
    </PasswordActionModal>
  );
}

export function RestoreModal({ token, onClose, onDone }: { token: RotationToken | null; onClose: () => void; onDone: (msg: string) => void }) {
  const restore = useRestore();
  return (
    <PasswordActionModal
      token={token}
      onClose={onClose}
      title="Restore previous keys"
      confirmLabel="Restore previous keys"
      color="#a13c07"
      action={restore}
      onDone={onDone}
      done={(d) => {
        const n = (d as { secretsRestored?: number }).secretsRestored;
        return `Restored the previous keys of ${token?.userEmail ?? 'the user'}${typeof n === 'number' ? ` (${n} secrets restored)` : ''}.`;
      }}
    >
      {token ? (
        <>
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            Roll back the rotation of <strong>{token.userEmail}</strong> to key v{token.fromKeyVersion} and the secrets as they were before it.
          </Text>
          <Alert color="blue" variant="light" role="note">
            <Text size="sm">
              The server refuses if the user changed secrets after the rotation, so no data can be lost. The user will need to sign in
              again.
            </Text>
          </Alert>
        </>
      ) : null}
    </PasswordActionModal>
  );
}
