import { Anchor, Box, Center, Group, Paper, Text } from '@mantine/core';
import { Outlet } from 'react-router';

/** Sign-in, register and setup: one centred card inside the page's <main>. */
export function PublicLayout() {
  return (
    <Box component="main" mih="100vh" bg="gray.0" py="xl" px="sm">
      <Center>
        <Box w="100%" maw={440}>
          <Group gap={8} justify="center" mb="lg">
            <img src="/favicon.svg" alt="" width={32} height={32} />
            <Text fw={800} size="xl" c="indigo.9">
              Keyturn
            </Text>
          </Group>
          <Paper withBorder shadow="sm" p={{ base: 'md', xs: 'xl' }} radius="md">
            <Outlet />
          </Paper>
          <Text ta="center" size="xs" c="gray.7" mt="md">
            Self-hosted secrets vault ·{' '}
            <Anchor href="/docs" size="xs" c="indigo.9">
              API docs
            </Anchor>
          </Text>
        </Box>
      </Center>
    </Box>
  );
}
