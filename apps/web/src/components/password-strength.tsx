import { isCommonPassword, PASSWORD_MIN } from '@keyturn/shared';
import { Box, Progress, Text } from '@mantine/core';
import { charCount } from '../lib/format';

const LABELS = ['Too short', 'Weak', 'Fair', 'Good', 'Strong'] as const;
const COLORS = ['red.9', 'red.9', '#a13c07', 'teal.9', '#2b6a33'] as const;

/** 0–4: length carries most of it; variety helps; common passwords are 1 at most. */
export function passwordScore(pw: string): number {
  const len = charCount(pw);
  if (len < PASSWORD_MIN) return 0;
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((r) => r.test(pw)).length;
  let score = 1;
  if (len >= 14) score++;
  if (len >= 18) score++;
  if (classes >= 3 || len >= 24) score++;
  if (isCommonPassword(pw)) score = 1;
  return Math.min(4, score);
}

/** A simple meter; the server's rules (length, not common) are the ones that decide. */
export function PasswordStrength({ password, id }: { password: string; id: string }) {
  if (!password) return null;
  const score = passwordScore(password);
  const label = isCommonPassword(password) ? 'Too common' : LABELS[score];
  return (
    <Box id={id} aria-live="polite">
      <Progress
        value={(score / 4) * 100}
        color={COLORS[score]}
        size="sm"
        aria-label={`Password strength: ${label}`}
        mt={6}
      />
      <Text size="xs" c="gray.7" mt={4}>
        Strength: <strong>{label}</strong>
        {score === 0 ? ` — at least ${PASSWORD_MIN} characters` : ''}
      </Text>
    </Box>
  );
}
