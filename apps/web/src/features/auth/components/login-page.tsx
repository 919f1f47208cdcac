import { Alert, Anchor, Button, Group, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import { Link, useLocation } from 'react-router';
import { FormError } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { SESSION_END_NOTICE, type SessionEndReason } from '../../../lib/session-events';
import { useZodForm } from '../../../lib/use-zod-form';
import { LoginBodySchema, useLogin } from '../api/auth.api';

export function LoginPage() {
  useDocumentTitle('Sign in · Keyturn');
  const location = useLocation();
  const notice = (location.state as { notice?: SessionEndReason } | null)?.notice;
  const login = useLogin();
  const form = useZodForm(LoginBodySchema, { email: '', password: '' });

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        Sign in
      </Title>
      {notice && !login.isError ? (
        <Alert color={notice === 'signed-out' ? 'gray' : 'blue'} variant="light" role="status">
          <Text size="sm">{SESSION_END_NOTICE[notice]}</Text>
        </Alert>
      ) : null}
      <form noValidate onSubmit={form.onSubmit((body) => login.mutate(body))}>
        <Stack gap="sm">
          <TextInput label="Email" type="email" autoComplete="username" required {...form.field('email')} />
          <div>
            <PasswordInput label="Password" autoComplete="current-password" required {...form.field('password')} />
            <Group justify="flex-end" mt={4}>
              <Anchor component={Link} to="/forgot_password" size="sm" c="indigo.9">
                Forgot password?
              </Anchor>
            </Group>
          </div>
          <FormError message={login.isError ? errorMessage(login.error) : null} />
          <Button type="submit" loading={login.isPending} fullWidth>
            Sign in
          </Button>
        </Stack>
      </form>
      <Text size="sm" ta="center">
        No account yet?{' '}
        <Anchor component={Link} to="/register" c="indigo.9">
          Create one
        </Anchor>
      </Text>
    </Stack>
  );
}
