import { Code, Group, Text } from '@mantine/core';

/** The words both sides read aloud to be sure they mean the same request. */
export function Fingerprint({ value, size = 'md', label = 'Fingerprint' }: { value: string; size?: 'sm' | 'md' | 'lg'; label?: string }) {
  const fz = size === 'lg' ? 'xl' : size === 'md' ? 'md' : 'sm';
  return (
    <Group gap={6} wrap="wrap" align="baseline">
      <Text size="sm" c="gray.7" component="span">
        {label}:
      </Text>
      <Code data-testid="fingerprint" fz={fz} fw={700} c="indigo.9" bg="indigo.0" px={8} py={2} style={{ overflowWrap: 'anywhere' }}>
        {value}
      </Code>
    </Group>
  );
}
