import type { RecoveryCompleted } from '@keyturn/shared';
import { Alert, Anchor, Button, List, PasswordInput, Progress, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import { useEffect, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { FormError } from '../../../components/query-state';
import { type ApiError, detailNumber, isApiError } from '../../../lib/api-error';
import { errorMessage, fieldErrors, type MessageOverrides } from '../../../lib/error-messages';
import { plural } from '../../../lib/format';
import { useZodForm } from '../../../lib/use-zod-form';
import { RecoveryCompleteBodySchema, useCompleteRecovery } from '../api/recovery.api';

const COMPLETE_MESSAGES: MessageOverrides = {
  INVALID_CREDENTIALS: (e: ApiError) => {
    const left = detailNumber(e, 'attemptsLeft');
    const tries =
      left === null ? '' : left === 0 ? ' No tries are left.' : ` ${plural(left, 'try', 'tries')} left before the request is revoked.`;
    return `That is not the new password you chose for this request.${tries}`;
  },
  // The server gives one answer for an unknown id and for every state but "approved" (no enumeration);
  // a refusal with a reason (keys changed since the approval, account disabled) says it in its message.
  INVALID_STATE: (e: ApiError) =>
    reasonOf(e)
      ? e.message
      : 'This recovery request cannot be completed: it is not approved yet, or it is no longer open (already used, rejected, cancelled, replaced by a newer request), or the id is wrong. If your administrator has not approved it yet, try again once they have. If an earlier request of yours was already approved, finish that one instead.',
  TOKEN_EXPIRED: 'This recovery request has expired. Start a new one.',
  TOKEN_REVOKED: 'This recovery request was revoked after too many wrong passwords. Start a new one.',
  // Says what is running (another attempt, a key rotation) and that trying again later works.
  LOST_RACE: (e: ApiError) => e.message,
  ESCROW_CHECK_FAILED: 'Your recovery copy could not be verified. Nothing was changed; contact your administrator.',
  KEY_CHECK_FAILED: 'Your recovery copy could not be verified. Nothing was changed; contact your administrator.',
  RATE_LIMITED: (e) => (e.retryAfter ? `Too many attempts. Try again in ${e.retryAfter} seconds.` : 'Too many attempts. Wait a minute and try again.'),
};

const reasonOf = (e: ApiError): string | null => {
  const r = e.details && typeof e.details === 'object' ? (e.details as { reason?: unknown }).reason : undefined;
  return typeof r === 'string' ? r : null;
};

/** After these the request is gone for good: offer a new one. */
const needsNewRequest = (e: unknown) =>
  isApiError(e) && (e.code === 'TOKEN_EXPIRED' || e.code === 'TOKEN_REVOKED' || (e.code === 'INVALID_STATE' && reasonOf(e) === 'KEY_CHANGED'));

/** `/recover?request=<id>`: the requester finishes an approved recovery with the new password. */
export function RecoverPage() {
  useDocumentTitle('Complete account recovery · Keyturn');
  const [params] = useSearchParams();
  const [result, setResult] = useState<RecoveryCompleted | null>(null);
  return result ? <RecoveredView result={result} /> : <CompleteForm initialRequestId={params.get('request') ?? ''} onDone={setResult} />;
}

function CompleteForm({ initialRequestId, onDone }: { initialRequestId: string; onDone: (r: RecoveryCompleted) => void }) {
  const complete = useCompleteRecovery();
  const form = useZodForm(
    RecoveryCompleteBodySchema,
    { requestId: initialRequestId, newPassword: '' },
    { toInput: (v) => ({ requestId: v.requestId.trim(), newPassword: v.newPassword }) },
  );
  const serverFields = fieldErrors(complete.error);
  const code = isApiError(complete.error) ? complete.error.code : null;

  const submit = form.onSubmit((body) =>
    complete.mutate(body, {
      onSuccess: (r) => {
        form.reset();
        onDone(r);
      },
      onError: (e) => {
        if (isApiError(e) && e.code === 'INVALID_CREDENTIALS') {
          const el = document.querySelector<HTMLInputElement>('input[name="newPassword"]');
          el?.focus();
          el?.select();
        }
      },
    }),
  );

  if (complete.isPending) return <CompletingView />;

  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        Complete account recovery
      </Title>
      <Text size="sm" c="gray.7">
        Once your administrator has approved your request, enter its id and the new password you chose when you made it.
      </Text>
      <form noValidate onSubmit={submit}>
        <Stack gap="sm">
          <TextInput
            label="Request id"
            description="Shown when you requested the recovery."
            required
            spellCheck={false}
            autoComplete="off"
            {...form.field('requestId')}
            error={form.errors.requestId ?? serverFields.requestId}
          />
          <PasswordInput
            label="New password"
            description="The one you chose when you requested the recovery."
            autoComplete="new-password"
            required
            {...form.field('newPassword')}
            error={form.errors.newPassword ?? serverFields.newPassword ?? (code === 'INVALID_CREDENTIALS' ? ' ' : undefined)}
          />
          {complete.isError ? (
            <Stack gap={4}>
              <FormError message={errorMessage(complete.error, COMPLETE_MESSAGES)} />
              {needsNewRequest(complete.error) ? (
                <Anchor component={Link} to="/forgot_password" size="sm" c="indigo.9">
                  Start a new recovery request
                </Anchor>
              ) : null}
            </Stack>
          ) : null}
          <Button type="submit" fullWidth>
            Complete recovery
          </Button>
        </Stack>
      </form>
      <Text size="sm" ta="center">
        No request yet?{' '}
        <Anchor component={Link} to="/forgot_password" c="indigo.9">
          Request account recovery
        </Anchor>
      </Text>
    </Stack>
  );
}

function CompletingView() {
  return (
    <Stack gap="sm" role="status" aria-live="polite" aria-busy="true">
      <Title order={1} size="h2">
        Recovering your vault…
      </Title>
      <Progress value={100} animated striped aria-label="Recovery in progress" size="lg" />
      <Text size="sm">This usually takes a few seconds. Keep this tab open.</Text>
    </Stack>
  );
}

function RecoveredView({ result }: { result: RecoveryCompleted }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <Stack gap="md" data-testid="recovery-result">
      <Title order={1} size="h2" c="teal.9" ref={heading} tabIndex={-1} style={{ outline: 'none' }}>
        Recovery complete
      </Title>
      <Alert color="teal" variant="light" role="status">
        <List size="sm" spacing={4}>
          <List.Item>
            Your vault was re-keyed: {plural(result.secretsReencrypted, 'secret')} re-encrypted under a new key (key version v
            {result.keyVersion}).
          </List.Item>
          <List.Item>All your sessions were signed out ({plural(result.sessionsRevoked, 'session')}).</List.Item>
          <List.Item>Sign in with your new password from now on. Your old password no longer works.</List.Item>
        </List>
      </Alert>
      <Button component={Link} to="/login" fullWidth>
        Sign in
      </Button>
    </Stack>
  );
}
