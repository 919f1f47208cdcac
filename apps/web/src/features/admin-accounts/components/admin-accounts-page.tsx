import { Alert, Button, CloseButton, Group, Paper, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useState } from 'react';
import { PageHeader } from '../../../components/page-header';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { isApiError } from '../../../lib/api-error';
import { errorMessage, fieldErrors, type MessageOverrides } from '../../../lib/error-messages';
import { useZodForm } from '../../../lib/use-zod-form';
import { CreateAdminBodySchema, useCreateAdmin } from '../api/admin-accounts.api';

const MESSAGES: MessageOverrides = {
  ADMIN_REAUTH_FAILED: 'Your admin password is not correct. No administrator was added.',
  EMAIL_TAKEN: 'An account with that email already exists. No administrator was added; use another email.',
  RATE_LIMITED: 'Too many attempts. Wait a minute and try again.',
  FORBIDDEN: 'Only an administrator can add administrators.',
};

type Field = 'email' | 'password' | 'confirm' | 'adminPassword';

/** Which field an error code points at, so focus and the red outline land there. */
const FIELD_OF: Partial<Record<string, Field>> = {
  ADMIN_REAUTH_FAILED: 'adminPassword',
  EMAIL_TAKEN: 'email',
};

const EMPTY = { email: '', password: '', confirm: '', adminPassword: '' };

export function AdminAccountsPage() {
  const create = useCreateAdmin();
  const [added, setAdded] = useState<string | null>(null);
  const form = useZodForm(CreateAdminBodySchema, EMPTY, {
    toInput: ({ email, password, adminPassword }) => ({ email, password, adminPassword }),
    extra: (v) => (v.confirm !== v.password ? { confirm: 'The passwords do not match' } : {}),
  });

  const serverFields = fieldErrors(create.error);
  const code = isApiError(create.error) ? create.error.code : null;
  const errorField = code ? FIELD_OF[code] : undefined;
  const fieldError = (k: Field) => form.errors[k] ?? serverFields[k] ?? (errorField === k ? ' ' : undefined);

  const submit = form.onSubmit((body) => {
    setAdded(null);
    create.mutate(body, {
      onSuccess: (user) => {
        // Clears every field: no password stays in the page's state.
        form.reset(EMPTY);
        setAdded(user.email);
      },
      onError: (e) => {
        const at = isApiError(e) ? FIELD_OF[e.code] : undefined;
        if (at === 'adminPassword') form.setValue('adminPassword', '');
        if (at) document.querySelector<HTMLInputElement>(`input[name="${at}"]`)?.focus();
      },
    });
  });

  return (
    <>
      <PageHeader
        title="Administrators"
        description="A new administrator shares the admin master key: they can approve rotations and finalize escrow. Your own password is needed to hand it over."
      />
      {added ? (
        <Alert color="teal" variant="light" mb="md" role="status" title="Administrator added">
          <Group justify="space-between" wrap="nowrap">
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
              {added} is now an administrator and can sign in with the password you set.
            </Text>
            <CloseButton aria-label="Dismiss message" onClick={() => setAdded(null)} />
          </Group>
        </Alert>
      ) : null}
      <Paper withBorder p="md" radius="md" maw={560}>
        <form noValidate onSubmit={submit} aria-label="Add an administrator">
          <Stack gap="sm">
            <TextInput
              label="Email"
              type="email"
              autoComplete="off"
              required
              spellCheck={false}
              {...form.field('email')}
              error={fieldError('email')}
            />
            <div>
              <PasswordInput
                label="Password"
                autoComplete="new-password"
                required
                aria-describedby="admin-accounts-strength"
                {...form.field('password')}
                error={fieldError('password')}
              />
              <PasswordStrength password={form.values.password} id="admin-accounts-strength" />
            </div>
            <PasswordInput
              label="Confirm password"
              autoComplete="new-password"
              required
              {...form.field('confirm')}
              error={fieldError('confirm')}
            />
            <PasswordInput
              label="Your admin password"
              autoComplete="current-password"
              required
              {...form.field('adminPassword')}
              error={fieldError('adminPassword')}
            />
            <FormError message={create.isError ? errorMessage(create.error, MESSAGES) : null} />
            <Group justify="flex-end">
              <Button type="submit" loading={create.isPending}>
                Add administrator
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </>
  );
}
