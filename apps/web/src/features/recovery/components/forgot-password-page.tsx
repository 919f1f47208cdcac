import type { RecoveryRequested } from '@keyturn/shared';
import { Alert, Anchor, Button, Code, CopyButton, Group, List, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { Fingerprint } from '../../../components/fingerprint';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { errorMessage, fieldErrors, type MessageOverrides } from '../../../lib/error-messages';
import { formatDateTime, formatDuration } from '../../../lib/format';
import { useNow } from '../../../lib/use-now';
import { useZodForm } from '../../../lib/use-zod-form';
import { RecoveryRequestBodySchema, useRequestRecovery } from '../api/recovery.api';

const MESSAGES: MessageOverrides = {
  RATE_LIMITED: (e) =>
    e.retryAfter ? `Too many recovery requests. Try again in ${e.retryAfter} seconds.` : 'Too many recovery requests. Wait a minute and try again.',
};

/** `/forgot_password`: the requester chooses the new password now; an administrator approves later. */
export function ForgotPasswordPage() {
  useDocumentTitle('Forgot password · Keyturn');
  const [requested, setRequested] = useState<RecoveryRequested | null>(null);
  return requested ? <RequestedView requested={requested} /> : <RequestForm onDone={setRequested} />;
}

function RequestForm({ onDone }: { onDone: (r: RecoveryRequested) => void }) {
  const recovery = useRequestRecovery();
  const form = useZodForm(
    RecoveryRequestBodySchema,
    { email: '', newPassword: '', confirm: '' },
    {
      toInput: ({ email, newPassword }) => ({ email, newPassword }),
      extra: (v) => (v.confirm !== v.newPassword ? { confirm: 'The passwords do not match' } : {}),
    },
  );
  const serverFields = fieldErrors(recovery.error);

  const submit = form.onSubmit((body) =>
    recovery.mutate(body, {
      onSuccess: (r) => {
        // No password stays in the page's state once it has done its work.
        form.reset();
        onDone(r);
      },
    }),
  );

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        Forgot your password?
      </Title>
      <Text size="sm" c="gray.7">
        Choose a new password now. An administrator approves the request after checking it with you; then you finish the recovery
        with this new password. Your administrator never sees it.
      </Text>
      <form noValidate onSubmit={submit}>
        <Stack gap="sm">
          <TextInput
            label="Email"
            type="email"
            autoComplete="username"
            required
            {...form.field('email')}
            error={form.errors.email ?? serverFields.email}
          />
          <div>
            <PasswordInput
              label="New password"
              autoComplete="new-password"
              required
              aria-describedby="recovery-strength"
              {...form.field('newPassword')}
              error={form.errors.newPassword ?? serverFields.newPassword}
            />
            <PasswordStrength password={form.values.newPassword} id="recovery-strength" />
          </div>
          <PasswordInput label="Confirm new password" autoComplete="new-password" required {...form.field('confirm')} />
          <FormError message={recovery.isError ? errorMessage(recovery.error, MESSAGES) : null} />
          <Button type="submit" loading={recovery.isPending} fullWidth>
            Request account recovery
          </Button>
        </Stack>
      </form>
      <Text size="sm" ta="center">
        Remembered it?{' '}
        <Anchor component={Link} to="/login" c="indigo.9">
          Sign in
        </Anchor>
      </Text>
    </Stack>
  );
}

function RequestedView({ requested }: { requested: RecoveryRequested }) {
  const now = useNow(1000);
  const left = (new Date(requested.expiresAt).getTime() - now) / 1000;
  // The form was replaced under the focus: move it to the new heading.
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);

  return (
    <Stack gap="md" data-testid="recovery-requested">
      <Title order={1} size="h2" ref={heading} tabIndex={-1} style={{ outline: 'none' }}>
        Recovery requested
      </Title>
      <Alert color="blue" variant="light" role="status" title="What to do now">
        <Text size="sm">
          Contact your administrator and read them this fingerprint. Once they approve, complete the recovery with the new password
          you just chose.
        </Text>
      </Alert>
      <Fingerprint value={requested.fingerprint} size="lg" label="Fingerprint to read to your administrator" />
      <Stack gap={4}>
        <Text size="sm" fw={600}>
          Request id
        </Text>
        <Group gap="xs" wrap="nowrap" align="center">
          <Code data-testid="recovery-request-id" style={{ overflowWrap: 'anywhere' }}>
            {requested.requestId}
          </Code>
          <CopyButton value={requested.requestId} timeout={3000}>
            {({ copied, copy }) => (
              <Button size="xs" variant="default" onClick={copy} style={{ flexShrink: 0 }}>
                {copied ? 'Copied' : 'Copy request id'}
              </Button>
            )}
          </CopyButton>
        </Group>
      </Stack>
      <Text size="sm" fw={600} data-testid="recovery-expiry">
        {left > 0 ? `Expires in ${formatDuration(left)}` : 'Expired'}{' '}
        <Text span size="xs" c="gray.7" fw={400}>
          ({formatDateTime(requested.expiresAt)})
        </Text>
      </Text>
      <List size="sm" spacing={4}>
        <List.Item>Your administrator checks the request with you before approving it. Only they can approve it.</List.Item>
        <List.Item>Completing the recovery re-encrypts your vault with a new key and signs out every session.</List.Item>
        <List.Item>Keep the request id: you need it and your new password to finish, before the request expires.</List.Item>
      </List>
      <Button component={Link} to={`/recover?request=${encodeURIComponent(requested.requestId)}`} fullWidth>
        Complete the recovery
      </Button>
      <Text size="sm" ta="center">
        <Anchor component={Link} to="/login" c="indigo.9">
          Back to sign in
        </Anchor>
      </Text>
    </Stack>
  );
}
