import { Button, Stack, Text } from '@mantine/core';
import { Link } from 'react-router';
import { PageHeader } from '../components/page-header';

export function NotAllowedPage() {
  return (
    <Stack maw={560}>
      <PageHeader title="Not allowed" />
      <Text>This page is only for administrators. If you think you should have access, ask an administrator.</Text>
      <div>
        <Button component={Link} to="/">
          Back to my vault
        </Button>
      </div>
    </Stack>
  );
}

export function NotFoundPage() {
  return (
    <Stack maw={560}>
      <PageHeader title="Page not found" />
      <Text>There is nothing at this address.</Text>
      <div>
        <Button component={Link} to="/">
          Back to my vault
        </Button>
      </div>
    </Stack>
  );
}
