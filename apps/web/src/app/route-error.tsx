import { Button, Container, Stack, Text, Title } from '@mantine/core';
import { useRouteError } from 'react-router';

/** Last resort when a screen throws while rendering: never a blank page. */
export function RouteError() {
  const error = useRouteError();
  console.error(error);
  return (
    <Container component="main" size="sm" py="xl">
      <Stack>
        <Title order={1} size="h2">
          Something went wrong
        </Title>
        <Text>This screen failed to load. Reloading usually helps.</Text>
        <div>
          <Button onClick={() => window.location.assign('/')}>Reload Keyturn</Button>
        </div>
      </Stack>
    </Container>
  );
}
