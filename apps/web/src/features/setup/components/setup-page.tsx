import { SetupBodySchema } from '@keyturn/shared';
import { Alert, Button, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { isApiError } from '../../../lib/api-error';
import { errorMessage, fieldErrors } from '../../../lib/error-messages';
import { setupKeys } from '../../../lib/query-keys';
import { adoptSession } from '../../../lib/session';
import { useZodForm } from '../../../lib/use-zod-form';
import { useRunSetup } from '../api/setup.api';

export function SetupPage() {
  useDocumentTitle('First-run setup · Keyturn');
  const qc = useQueryClient();
  const navigate = useNavigate();
  const setup = useRunSetup();
  const form = useZodForm(
    SetupBodySchema,
    { setupCode: '', email: '', password: '', confirm: '' },
    {
      toInput: ({ setupCode, email, password }) => ({ setupCode: setupCode.trim(), email, password }),
      extra: (v) => (v.confirm !== v.password ? { confirm: 'The passwords do not match' } : {}),
    },
  );
  const serverFields = fieldErrors(setup.error);

  const submit = form.onSubmit((body) =>
    setup.mutate(body, {
      onSuccess: async (session) => {
        qc.setQueryData(setupKeys.status(), { needed: false });
        await adoptSession(qc, session.csrfToken);
        navigate('/', { replace: true });
      },
      onError: (e) => {
        // Someone finished setup meanwhile: the gate sends us to sign in.
        if (isApiError(e) && e.code === 'SETUP_DONE') qc.invalidateQueries({ queryKey: setupKeys.all });
      },
    }),
  );

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        First-run setup
      </Title>
      <Text size="sm" c="gray.7">
        Create the first administrator. The one-time setup code was printed in the server log when Keyturn started (or set with{' '}
        <code>SETUP_CODE</code>).
      </Text>
      <Alert color="blue" variant="light" role="note">
        <Text size="sm">
          This admin account holds the recovery key for everyone's vault. Choose a strong password and keep it safe.
        </Text>
      </Alert>
      <form noValidate onSubmit={submit}>
        <Stack gap="sm">
          <TextInput label="Setup code" autoComplete="one-time-code" required {...form.field('setupCode')} error={form.errors.setupCode ?? serverFields.setupCode} />
          <TextInput label="Admin email" type="email" autoComplete="username" required {...form.field('email')} error={form.errors.email ?? serverFields.email} />
          <div>
            <PasswordInput
              label="Admin password"
              autoComplete="new-password"
              required
              aria-describedby="setup-strength"
              {...form.field('password')}
              error={form.errors.password ?? serverFields.password}
            />
            <PasswordStrength password={form.values.password} id="setup-strength" />
          </div>
          <PasswordInput label="Confirm password" autoComplete="new-password" required {...form.field('confirm')} />
          <FormError message={setup.isError ? errorMessage(setup.error, { FORBIDDEN: 'That setup code is not correct.', INVALID_CREDENTIALS: 'That setup code is not correct.' }) : null} />
          <Button type="submit" loading={setup.isPending} fullWidth>
            Create admin and sign in
          </Button>
        </Stack>
      </form>
    </Stack>
  );
}
