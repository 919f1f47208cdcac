import { OPEN_STATUSES, REASON_MAX, RequestRotationBodySchema, type RotationToken } from '@keyturn/shared';
import { Alert, Button, Group, List, Paper, Stack, Text, Textarea, Title } from '@mantine/core';
import { useState } from 'react';
import { Link } from 'react-router';
import { Fingerprint } from '../../../components/fingerprint';
import { PageHeader } from '../../../components/page-header';
import { ErrorBlock, FormError, LoadingBlock } from '../../../components/query-state';
import { errorMessage } from '../../../lib/error-messages';
import { charCount } from '../../../lib/format';
import { useZodForm } from '../../../lib/use-zod-form';
import { useMyRotations, useRequestRotation } from '../api/rotation.api';
import { RotationRequestCard } from './rotation-request-card';

export function RotationRequestPage() {
  const mine = useMyRotations();
  const items = mine.data?.items ?? [];
  const open = items.find((t) => OPEN_STATUSES.includes(t.status));

  return (
    <>
      <PageHeader
        title="Key rotation"
        description="Replace the key that encrypts your vault. An administrator approves each rotation."
      />
      <Stack gap="lg">
        <HowItWorks />
        {mine.isPending ? <LoadingBlock label="Loading your requests…" /> : null}
        {mine.isError ? <ErrorBlock error={mine.error} onRetry={() => mine.refetch()} title="Could not load your requests" /> : null}
        {mine.isSuccess && !open ? <RequestForm /> : null}
        {open ? <OpenRequestNotice token={open} /> : null}
        {mine.isSuccess ? (
          <section aria-labelledby="my-requests">
            <Title order={2} size="h4" id="my-requests" mb="sm">
              My requests
            </Title>
            {items.length === 0 ? (
              <Text c="gray.7">You have not requested a key rotation yet.</Text>
            ) : (
              <Stack component="ul" gap="sm" p={0} m={0} style={{ listStyle: 'none' }}>
                {items.map((t) => (
                  <RotationRequestCard key={t.id} token={t} />
                ))}
              </Stack>
            )}
            {mine.data.total > items.length ? (
              <Text size="sm" c="gray.7" mt="sm">
                Showing the {items.length} most recent of {mine.data.total} requests.
              </Text>
            ) : null}
          </section>
        ) : null}
      </Stack>
    </>
  );
}

function HowItWorks() {
  return (
    <Paper withBorder p="md" radius="md" bg="gray.0">
      <Title order={2} size="h5" mb={6}>
        How it works
      </Title>
      <List type="ordered" size="sm" spacing={4}>
        <List.Item>You ask for a rotation and say why. You get a four-word fingerprint.</List.Item>
        <List.Item>
          An administrator checks the fingerprint with you, approves, and gives you a temporary password (it expires).
        </List.Item>
        <List.Item>You run the rotation with the temporary password and your current password. Your secrets are re-encrypted.</List.Item>
        <List.Item>The administrator finalizes the rotation.</List.Item>
      </List>
    </Paper>
  );
}

function OpenRequestNotice({ token }: { token: RotationToken }) {
  return (
    <Alert color="blue" variant="light" title="You have an open request" role="status">
      <Stack gap={6}>
        <Text size="sm">
          {token.status === 'approved'
            ? 'It has been approved. Run the rotation with the temporary password from your administrator.'
            : token.status === 'in_progress'
              ? 'A rotation is running for it right now.'
              : 'It is waiting for an administrator. Read them this fingerprint:'}
        </Text>
        <Fingerprint value={token.fingerprint} size="lg" />
        {token.status === 'approved' ? (
          <Group>
            <Button component={Link} to={`/key_rotation_with_token?tokenId=${encodeURIComponent(token.id)}`}>
              Go to key rotation
            </Button>
          </Group>
        ) : null}
      </Stack>
    </Alert>
  );
}

function RequestForm() {
  const requestRotation = useRequestRotation();
  const [created, setCreated] = useState<RotationToken | null>(null);
  const form = useZodForm(RequestRotationBodySchema, { reason: '' });
  const count = charCount(form.values.reason);

  return (
    <Paper withBorder p="md" radius="md">
      <Title order={2} size="h4" mb="sm">
        Request a key rotation
      </Title>
      {created ? (
        <Alert color="teal" variant="light" mb="sm" role="status" title="Request sent">
          <Fingerprint value={created.fingerprint} size="lg" />
        </Alert>
      ) : null}
      <form
        noValidate
        onSubmit={form.onSubmit((body) =>
          requestRotation.mutate(body, {
            onSuccess: (t) => {
              setCreated(t);
              form.reset();
            },
          }),
        )}
      >
        <Stack gap="sm">
          <Textarea
            label="Reason"
            description="Why do you want new keys? Your administrator sees this."
            required
            autosize
            minRows={3}
            maxRows={8}
            {...form.field('reason')}
          />
          <Text id="reason-count" size="xs" c={count > REASON_MAX ? 'red.9' : 'gray.7'} ta="right" data-testid="reason-count">
            {count} / {REASON_MAX} characters
          </Text>
          <FormError
            message={
              requestRotation.isError
                ? errorMessage(requestRotation.error, {
                    OPEN_REQUEST_EXISTS: 'You already have an open request (see below). Cancel it or finish it first.',
                  })
                : null
            }
          />
          <Group>
            <Button type="submit" loading={requestRotation.isPending}>
              Request key rotation
            </Button>
          </Group>
        </Stack>
      </form>
    </Paper>
  );
}
