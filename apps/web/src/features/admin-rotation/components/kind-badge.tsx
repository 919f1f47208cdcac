import type { RotationKind } from '@keyturn/shared';
import { Badge, Group } from '@mantine/core';

export const KIND_LABEL: Record<RotationKind, string> = { rotation: 'Rotation', recovery: 'Recovery' };

/** The row's "Kind" column: a user's own key rotation, or an account recovery (and the rotation it ran). */
export function KindBadge({ kind }: { kind: RotationKind }) {
  return (
    <Group gap={0} wrap="nowrap">
      <span className="kt-visually-hidden">Kind: </span>
      <Badge variant="outline" radius="sm" color={kind === 'recovery' ? 'grape.9' : 'gray.8'} data-testid="row-kind">
        {KIND_LABEL[kind]}
      </Badge>
    </Group>
  );
}
