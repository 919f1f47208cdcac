import { OkSchema, type RotateResult, RotateWithTokenBodySchema } from '@keyturn/shared';
import { Alert, Anchor, Button, Group, List, Paper, PasswordInput, Progress, SimpleGrid, Stack, Text, TextInput, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { Fingerprint } from '../../../components/fingerprint';
import { PageHeader } from '../../../components/page-header';
import { PasswordStrength } from '../../../components/password-strength';
import { FormError } from '../../../components/query-state';
import { request } from '../../../lib/api-client';
import { type ApiError, detailNumber, isApiError } from '../../../lib/api-error';
import { errorMessage, fieldErrors, type MessageOverrides } from '../../../lib/error-messages';
import { plural } from '../../../lib/format';
import { adoptSession } from '../../../lib/session';
import { sessionEvents } from '../../../lib/session-events';
import { useZodForm } from '../../../lib/use-zod-form';
import { useMyRotations, useRotateWithToken } from '../api/rotation.api';
import { ExpiryCountdown } from './rotation-request-card';

const ROTATE_MESSAGES: MessageOverrides = {
  WRONG_TEMP_PASSWORD: (e: ApiError) => {
    const left = detailNumber(e, 'attemptsLeft');
    const tries = left === null ? '' : left === 0 ? ' No tries are left.' : ` ${plural(left, 'try', 'tries')} left before the token is revoked.`;
    return `The temporary password is not correct.${tries}`;
  },
  INVALID_CREDENTIALS: 'Your current password is not correct. Nothing was changed.',
  TOKEN_EXPIRED: 'This token expired before it was used. Request a new key rotation.',
  TOKEN_REVOKED: 'This token was revoked after too many wrong temporary passwords. Request a new key rotation.',
  INVALID_STATE:
    'This token cannot be used now: it is not approved (it may still be pending, or already used, cancelled or rejected).',
  LOST_RACE: 'Another rotation with this token ran at the same moment. Check your requests before trying again.',
  NOT_FOUND: 'No rotation token with that id belongs to your account. Check the token id.',
  ESCROW_CHECK_FAILED: 'Your key could not be verified against the admin copy. Nothing was changed; contact your administrator.',
};

/** Which field an error code points at, so focus and the red outline land there. */
const FIELD_OF: Partial<Record<string, 'tempPassword' | 'currentPassword' | 'tokenId'>> = {
  WRONG_TEMP_PASSWORD: 'tempPassword',
  INVALID_CREDENTIALS: 'currentPassword',
  NOT_FOUND: 'tokenId',
};

const NEW_REQUEST_CODES = new Set(['TOKEN_EXPIRED', 'TOKEN_REVOKED']);

export function ExecuteRotationPage() {
  const [params] = useSearchParams();
  const [result, setResult] = useState<RotateResult | null>(null);
  return (
    <>
      <PageHeader title="Run key rotation" description="Re-encrypt your vault with a new key, using the temporary password from your administrator." />
      {result ? <RotationResult result={result} /> : <RotationForm initialTokenId={params.get('tokenId') ?? ''} onDone={setResult} />}
    </>
  );
}

function RotationForm({ initialTokenId, onDone }: { initialTokenId: string; onDone: (r: RotateResult) => void }) {
  const qc = useQueryClient();
  const rotate = useRotateWithToken();
  const mine = useMyRotations();
  const form = useZodForm(
    RotateWithTokenBodySchema,
    { tokenId: initialTokenId, tempPassword: '', currentPassword: '', newPassword: '', confirmNewPassword: '' },
    {
      toInput: (v) => ({
        tokenId: v.tokenId.trim(),
        tempPassword: v.tempPassword.trim(),
        currentPassword: v.currentPassword,
        newPassword: v.newPassword === '' ? undefined : v.newPassword,
      }),
      extra: (v) =>
        v.newPassword !== '' && v.newPassword !== v.confirmNewPassword ? { confirmNewPassword: 'The new passwords do not match' } : {},
    },
  );

  // No token in the address: offer the approved one, if there is exactly that.
  const approved = mine.data?.items.find((t) => t.status === 'approved');
  const filled = useRef(initialTokenId !== '');
  useEffect(() => {
    if (!filled.current && approved) {
      filled.current = true;
      form.setValue('tokenId', approved.id);
    }
  }, [approved, form.setValue]);
  const token = mine.data?.items.find((t) => t.id === form.values.tokenId.trim());

  const serverFields = fieldErrors(rotate.error);
  const code = isApiError(rotate.error) ? rotate.error.code : null;
  const errorField = code ? FIELD_OF[code] : undefined;

  const submit = form.onSubmit(async (body) => {
    // The old session dies during the rotation: stop background requests that would race with it.
    const release = sessionEvents.hold();
    await qc.cancelQueries();
    rotate.mutate(body, {
      onSuccess: async (r) => {
        // The server set the new session cookie and revoked every other session: adopt the new one.
        await adoptSession(qc, r.session.csrfToken);
        release();
        onDone(r);
      },
      onError: (e) => {
        release();
        if (isApiError(e) && FIELD_OF[e.code]) {
          const el = document.querySelector<HTMLInputElement>(`input[name="${FIELD_OF[e.code]}"]`);
          el?.focus();
          el?.select();
        }
      },
    });
  });

  if (rotate.isPending) return <RotationProgress />;

  const fieldError = (k: 'tokenId' | 'tempPassword' | 'currentPassword' | 'newPassword' | 'confirmNewPassword') =>
    form.errors[k] ?? serverFields[k] ?? (errorField === k ? ' ' : undefined);

  return (
    <Stack gap="lg">
      <WhatHappens />
      <Paper withBorder p="md" radius="md">
        <form noValidate onSubmit={submit}>
          <Stack gap="sm">
            <TextInput
              label="Rotation token id"
              description="Prefilled from your approved request."
              required
              spellCheck={false}
              autoComplete="off"
              {...form.field('tokenId')}
              error={fieldError('tokenId')}
            />
            {token ? (
              <Stack gap={4}>
                <Fingerprint value={token.fingerprint} label="Check the fingerprint your administrator read to you" />
                {token.status === 'approved' && token.expiresAt ? <ExpiryCountdown expiresAt={token.expiresAt} /> : null}
              </Stack>
            ) : null}
            <PasswordInput
              label="Temporary password"
              description="From your administrator. It works only for this token and expires."
              required
              autoComplete="off"
              spellCheck={false}
              {...form.field('tempPassword')}
              error={fieldError('tempPassword')}
            />
            <PasswordInput
              label="Current password"
              required
              autoComplete="current-password"
              {...form.field('currentPassword')}
              error={fieldError('currentPassword')}
            />
            <Title order={2} size="h5" mt="xs">
              New password (optional)
            </Title>
            <Text size="sm" c="gray.7" mt={-6}>
              Leave empty to keep your current password.
            </Text>
            <div>
              <PasswordInput
                label="New password"
                autoComplete="new-password"
                aria-describedby="rotation-strength"
                {...form.field('newPassword')}
                error={fieldError('newPassword')}
              />
              <PasswordStrength password={form.values.newPassword} id="rotation-strength" />
            </div>
            <PasswordInput
              label="Confirm new password"
              autoComplete="new-password"
              {...form.field('confirmNewPassword')}
              error={fieldError('confirmNewPassword')}
              disabled={form.values.newPassword === ''}
            />
            {rotate.isError ? (
              <Stack gap={4}>
                <FormError message={errorMessage(rotate.error, ROTATE_MESSAGES)} />
                {code && NEW_REQUEST_CODES.has(code) ? (
                  <Anchor component={Link} to="/rotation_request" size="sm" c="indigo.9">
                    Request a new key rotation
                  </Anchor>
                ) : null}
              </Stack>
            ) : null}
            <Group>
              <Button type="submit">Rotate my keys</Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Stack>
  );
}

function WhatHappens() {
  return (
    <Paper withBorder p="md" radius="md" bg="gray.0">
      <Title order={2} size="h5" mb={6}>
        What will happen
      </Title>
      <List size="sm" spacing={4}>
        <List.Item>Your vault gets a new encryption key, and every secret is re-encrypted with it.</List.Item>
        <List.Item>If you choose a new password, it replaces your current one; otherwise your current password keeps working.</List.Item>
        <List.Item>All your other sessions (other browsers, API tokens) are signed out. This tab stays signed in.</List.Item>
        <List.Item>Your administrator finalizes the rotation afterwards. Until then they can restore your previous keys if needed.</List.Item>
      </List>
    </Paper>
  );
}

function RotationProgress() {
  return (
    <Paper withBorder p="lg" radius="md" role="status" aria-live="polite" aria-busy="true">
      <Stack gap="sm">
        <Title order={2} size="h4">
          Rotating your keys…
        </Title>
        <Progress value={100} animated striped aria-label="Rotation in progress" size="lg" />
        <Text size="sm">This usually takes a few seconds. Keep this tab open.</Text>
        <List size="sm" spacing={2} c="gray.8">
          <List.Item>Checking the temporary password and your current password</List.Item>
          <List.Item>Deriving your new key</List.Item>
          <List.Item>Re-encrypting your secrets</List.Item>
          <List.Item>Signing out your other sessions</List.Item>
        </List>
      </Stack>
    </Paper>
  );
}

function RotationResult({ result }: { result: RotateResult }) {
  const navigate = useNavigate();
  const heading = useRef<HTMLHeadingElement>(null);
  const [signingOut, setSigningOut] = useState(false);
  useEffect(() => heading.current?.focus(), []);

  const signOut = async () => {
    setSigningOut(true);
    await request('/api/auth/logout', { method: 'POST', schema: OkSchema }).catch(() => undefined);
    sessionEvents.end('rotated');
  };

  return (
    <Paper withBorder p="lg" radius="md" data-testid="rotation-result">
      <Stack gap="md">
        <Title order={2} size="h3" ref={heading} tabIndex={-1} c="teal.9">
          Key rotation complete
        </Title>
        <SimpleGrid cols={{ base: 1, xs: 3 }} spacing="sm">
          <Stat label="Secrets re-encrypted" value={String(result.secretsReencrypted)} testId="result-secrets" />
          <Stat label="New key version" value={`v${result.keyVersion}`} testId="result-key-version" />
          <Stat label="Other sessions signed out" value={String(result.sessionsRevoked)} testId="result-sessions" />
        </SimpleGrid>
        <Alert color="teal" variant="light" role="note">
          <Text size="sm">
            You are signed in with a fresh session. If you chose a new password, use it from now on. Your administrator will finalize the
            rotation.
          </Text>
        </Alert>
        <Group>
          <Button onClick={() => navigate('/')}>Continue to my vault</Button>
          <Button variant="default" onClick={signOut} loading={signingOut}>
            Sign out and sign in again
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Paper withBorder p="sm" radius="md">
      <Text size="xs" c="gray.7" tt="uppercase" fw={700}>
        {label}
      </Text>
      <Text size="xl" fw={800} data-testid={testId}>
        {value}
      </Text>
    </Paper>
  );
}
