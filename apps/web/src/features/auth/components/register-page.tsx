import { Anchor, Button, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import { Link } from 'react-router';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { errorMessage, fieldErrors } from '../../../lib/error-messages';
import { useZodForm } from '../../../lib/use-zod-form';
import { RegisterBodySchema, useRegister } from '../api/auth.api';

export function RegisterPage() {
  useDocumentTitle('Create account · Keyturn');
  const register = useRegister();
  const form = useZodForm(
    RegisterBodySchema,
    { email: '', password: '', confirm: '' },
    {
      toInput: ({ email, password }) => ({ email, password }),
      extra: (v) => (v.confirm !== v.password ? { confirm: 'The passwords do not match' } : {}),
    },
  );
  const serverFields = fieldErrors(register.error);

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        Create your account
      </Title>
      <Text size="sm" c="gray.7">
        Your password encrypts your vault. Use at least 12 characters; a few random words work well.
      </Text>
      <form noValidate onSubmit={form.onSubmit((body) => register.mutate(body))}>
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
              label="Password"
              autoComplete="new-password"
              required
              aria-describedby="register-strength"
              {...form.field('password')}
              error={form.errors.password ?? serverFields.password}
            />
            <PasswordStrength password={form.values.password} id="register-strength" />
          </div>
          <PasswordInput label="Confirm password" autoComplete="new-password" required {...form.field('confirm')} />
          <FormError message={register.isError ? errorMessage(register.error) : null} />
          <Button type="submit" loading={register.isPending} fullWidth>
            Create account
          </Button>
        </Stack>
      </form>
      <Text size="sm" ta="center">
        Already have an account?{' '}
        <Anchor component={Link} to="/login" c="indigo.9">
          Sign in
        </Anchor>
      </Text>
    </Stack>
  );
}
