import { AdminPasswordBodySchema, type ApproveResult, type RotationToken } from '@keyturn/shared';
import { Alert, Button, Code, CopyButton, Group, Modal, PasswordInput, Stack, Text } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { Fingerprint } from '../../../components/fingerprint';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { formatDateTime, formatDuration } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { useZodForm } from '../../../lib/use-zod-form';
import { useApprove } from '../api/admin-rotation.api';
import { ADMIN_MESSAGES } from './admin-messages';

export function ApproveModal({ token, onClose }: { token: RotationToken | null; onClose: () => void }) {
  const approve = useApprove();
  const [result, setResult] = useState<ApproveResult | null>(null);
  const form = useZodForm(AdminPasswordBodySchema, { adminPassword: '' });
  const close = () => {
    setResult(null);
    approve.reset();
    form.reset();
    onClose();
  };
  const showing = result !== null;

  return (
    <Modal
      opened={token !== null}
      onClose={close}
      title={showing ? 'Temporary password' : 'Approve key rotation'}
      centered
      size="lg"
      closeOnClickOutside={!showing}
      closeOnEscape={!showing}
      withCloseButton={!showing}
    >
      {token && !result ? (
        <form
          noValidate
          onSubmit={form.onSubmit((body) =>
            approve.mutate(
              { tokenId: token.id, body },
              {
                onSuccess: (r) => {
                  form.reset();
                  setResult(r);
                },
              },
            ),
          )}
        >
          <Stack gap="sm">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              Approve the key rotation for <strong>{token.userEmail}</strong>?
            </Text>
            <Fingerprint value={token.fingerprint} size="lg" />
            <Text size="sm" c="gray.8">
              Ask the user to read you the fingerprint on their screen. Approve only if the words match.
            </Text>
            <Text size="sm" style={{ overflowWrap: 'anywhere', whiteSpace: 'pre-wrap' }}>
              <strong>Reason: </strong>
              {token.reason}
            </Text>
            <PasswordInput
              label="Your admin password"
              description="Approving unlocks the recovery key, so it needs your password."
              autoComplete="current-password"
              required
              data-autofocus
              {...form.field('adminPassword')}
            />
            <FormError message={approve.isError ? errorMessage(approve.error, ADMIN_MESSAGES) : null} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={approve.isPending}>
                Approve
              </Button>
            </Group>
          </Stack>
        </form>
      ) : null}
      {token && result ? <TempPasswordView token={token} result={result} onDone={close} /> : null}
    </Modal>
  );
}

function TempPasswordView({ token, result, onDone }: { token: RotationToken; result: ApproveResult; onDone: () => void }) {
  const now = useNow(1000);
  const left = (new Date(result.expiresAt).getTime() - now) / 1000;
  // The password form was replaced under the focus: put it on the copy button.
  const copyRef = useRef<HTMLButtonElement>(null);
  useEffect(() => copyRef.current?.focus(), []);
  return (
    <Stack gap="sm">
      <Alert color="orange" variant="light" title="This will not be shown again" role="alert">
        <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
          Copy the temporary password now and give it to <strong>{token.userEmail}</strong> over a channel you trust. Keyturn does not
          store it in readable form and will not show it again.
        </Text>
      </Alert>
      <Code block data-testid="temp-password" fz="lg" fw={700} style={{ overflowWrap: 'anywhere', whiteSpace: 'pre-wrap', userSelect: 'all' }}>
        {result.tempPassword}
      </Code>
      <Group>
        <CopyButton value={result.tempPassword} timeout={3000}>
          {({ copied, copy }) => (
            <Button ref={copyRef} onClick={copy} color={copied ? 'teal.9' : undefined}>
              {copied ? 'Copied' : 'Copy temporary password'}
            </Button>
          )}
        </CopyButton>
      </Group>
      <Fingerprint value={result.fingerprint} />
      <Text size="sm" fw={600} data-testid="temp-password-expiry">
        {left > 0 ? `Expires in ${formatDuration(left)}` : 'Expired'} ({formatDateTime(result.expiresAt)})
      </Text>
      {result.selfApproved ? (
        <Text size="sm" c="#a13c07">
          You approved your own request. This is recorded in the audit log.
        </Text>
      ) : null}
      <Group justify="flex-end">
        <Button variant="default" onClick={onDone}>
          I have copied it — close
        </Button>
      </Group>
    </Stack>
  );
}
