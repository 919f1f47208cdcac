import type { ChangePasswordResult } from '@keyturn/shared';
import { Alert, Button, CloseButton, Group, List, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { isApiError } from '../../../lib/api-error';
import { errorMessage, fieldErrors, type MessageOverrides } from '../../../lib/error-messages';
import { plural } from '../../../lib/format';
import { adoptSession } from '../../../lib/session';
import { sessionEvents } from '../../../lib/session-events';
import { useZodForm } from '../../../lib/use-zod-form';
import { ChangePasswordBodySchema, useChangePassword } from '../api/account.api';

const MESSAGES: MessageOverrides = {
  INVALID_CREDENTIALS: 'Your current password is not correct. Nothing was changed.',
  // The server's words say what happened and what to do (sign in again).
  LOST_RACE: (e) => e.message,
  RATE_LIMITED: (e) =>
    e.retryAfter ? `Too many wrong passwords. Try again in ${e.retryAfter} seconds.` : 'Too many wrong passwords. Wait a minute and try again.',
  KEY_CHECK_FAILED: 'Your stored key did not pass its integrity check. Nothing was changed; contact your administrator.',
};

type Field = 'currentPassword' | 'newPassword' | 'confirm';
const EMPTY = { currentPassword: '', newPassword: '', confirm: '' };

/** `/account`: change password, and what account recovery means for this vault. */
export function AccountPage() {
  return (
    <>
      <PageHeader title="Account" description="Your password and how your vault can be recovered." />
      <Stack gap="lg" maw={640}>
        <ChangePasswordSection />
        <RecoverySection />
      </Stack>
    </>
  );
}

function ChangePasswordSection() {
  const qc = useQueryClient();
  const change = useChangePassword();
  const [done, setDone] = useState<ChangePasswordResult | null>(null);
  const form = useZodForm(ChangePasswordBodySchema, EMPTY, {
    toInput: ({ currentPassword, newPassword }) => ({ currentPassword, newPassword }),
    extra: (v) => (v.confirm !== v.newPassword ? { confirm: 'The new passwords do not match' } : {}),
  });
  const serverFields = fieldErrors(change.error);
  const wrongCurrent = isApiError(change.error) && change.error.code === 'INVALID_CREDENTIALS';
  const fieldError = (k: Field) => form.errors[k] ?? serverFields[k] ?? (wrongCurrent && k === 'currentPassword' ? ' ' : undefined);

  const submit = form.onSubmit(async (body) => {
    setDone(null);
    // Every session of the account is revoked and this one replaced: a background request that
    // races with the old cookie must not send the user to the sign-in page.
    const release = sessionEvents.hold();
    await qc.cancelQueries();
    change.mutate(body, {
      onSuccess: async (r) => {
        form.reset(EMPTY);
        await adoptSession(qc, r.session.csrfToken);
        release();
        setDone(r);
      },
      onError: (e) => {
        release();
        // Reports were held during the request: a session that really ended must still end here.
        if (isApiError(e) && e.code === 'UNAUTHENTICATED') sessionEvents.end('expired');
        if (isApiError(e) && e.code === 'INVALID_CREDENTIALS') {
          form.setValue('currentPassword', '');
          document.querySelector<HTMLInputElement>('input[name="currentPassword"]')?.focus();
        }
      },
    });
  });

  return (
    <Paper withBorder p="md" radius="md" component="section" aria-labelledby="change-password-heading">
      <Stack gap="sm">
        <Title order={2} size="h4" id="change-password-heading">
          Change password
        </Title>
        <Text size="sm" c="gray.7">
          Your password protects the key of your vault. Changing it keeps every secret as it is, signs out your other sessions (other
          browsers, API tokens) and ends any open recovery request of your account; this tab stays signed in.
        </Text>
        {done ? (
          <Alert color="teal" variant="light" role="status" data-testid="password-changed">
            <Group justify="space-between" wrap="nowrap" align="flex-start">
              <Text size="sm">
                Password changed; other sessions were signed out ({plural(done.sessionsRevoked, 'session')}). Use your new password from
                now on.
              </Text>
              <CloseButton aria-label="Dismiss message" onClick={() => setDone(null)} />
            </Group>
          </Alert>
        ) : null}
        <form noValidate onSubmit={submit}>
          <Stack gap="sm">
            <PasswordInput
              label="Current password"
              autoComplete="current-password"
              required
              {...form.field('currentPassword')}
              error={fieldError('currentPassword')}
            />
            <div>
              <PasswordInput
                label="New password"
                autoComplete="new-password"
                required
                aria-describedby="account-strength"
                {...form.field('newPassword')}
                error={fieldError('newPassword')}
              />
              <PasswordStrength password={form.values.newPassword} id="account-strength" />
            </div>
            <PasswordInput
              label="Confirm new password"
              autoComplete="new-password"
              required
              {...form.field('confirm')}
              error={fieldError('confirm')}
            />
            <FormError message={change.isError ? errorMessage(change.error, MESSAGES) : null} />
            <Group>
              <Button type="submit" loading={change.isPending}>
                Change password
              </Button>
            </Group>
          </Stack>
        </form>
      </Stack>
    </Paper>
  );
}

function RecoverySection() {
  return (
    <Paper withBorder p="md" radius="md" component="section" aria-labelledby="account-recovery-heading" bg="gray.0">
      <Stack gap="sm">
        <Title order={2} size="h4" id="account-recovery-heading">
          Account recovery
        </Title>
        <Text size="sm">
          If you forget your password, administrators can recover this vault through an escrow copy of its key. You start it yourself
          with “Forgot password?” on the sign-in page and choose your new password there.
        </Text>
        <List size="sm" spacing={4}>
          <List.Item>An administrator has to approve each recovery, after checking it with you.</List.Item>
          <List.Item>They never learn your new password: only you can finish the recovery with it.</List.Item>
          <List.Item>
            You will always be told: a notice appears on your next sign-in when someone asks to recover your account (you can cancel the
            request there) and whenever an administrator opens your recovery copy, and every step is recorded in the audit trail.
          </List.Item>
          <List.Item>A finished recovery re-encrypts your vault under a new key and signs out every session.</List.Item>
        </List>
      </Stack>
    </Paper>
  );
}
