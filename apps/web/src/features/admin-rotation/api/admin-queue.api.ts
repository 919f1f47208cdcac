import type { RecoveryRequestView, RecoveryStatus, RotationKind, RotationStatus, RotationToken } from '@keyturn/shared';
import { useQuery } from '@tanstack/react-query';
import { adminRecoveriesQueryOptions } from './admin-recovery.api';
import { adminRotationsQueryOptions } from './admin-rotation.api';

/**
 * The console lists rotation requests and account recovery requests side by side. A row is one
 * or the other; its kind is what the admin sees: a rotation token of kind `recovery` (the
 * rotation a completed recovery ran) is a Recovery too, with the rotation's own actions.
 */
export type QueueItem =
  | { source: 'rotation'; kind: RotationKind; id: string; createdAt: string; token: RotationToken }
  | { source: 'recovery'; kind: 'recovery'; id: string; createdAt: string; request: RecoveryRequestView };

export type KindFilter = 'all' | RotationKind;

/** Which statuses of each list a tab shows (an empty list: none of that source). */
export interface QueueSpec {
  rotation: readonly RotationStatus[];
  recovery: readonly RecoveryStatus[];
}

export interface Queue {
  isPending: boolean;
  error: unknown;
  /** Newest first, filtered by kind. */
  items: QueueItem[];
  /** How many match in all (exact unless `truncated`). */
  total: number;
  /** A list had more than one answer holds: the oldest are not shown. */
  truncated: boolean;
  refetch: () => void;
}

export function useAdminQueue(spec: QueueSpec, kind: KindFilter): Queue {
  // Rotation tokens of kind "recovery" are Recovery rows, so the rotation list is read for every kind.
  const wantRotations = spec.rotation.length > 0;
  const wantRecoveries = spec.recovery.length > 0 && kind !== 'rotation';
  const rot = useQuery({ ...adminRotationsQueryOptions(spec.rotation, kind === 'all' ? undefined : kind), enabled: wantRotations });
  const rec = useQuery({ ...adminRecoveriesQueryOptions(spec.recovery), enabled: wantRecoveries });

  const rotItems: QueueItem[] = (wantRotations ? (rot.data?.items ?? []) : []).map((t) => ({ source: 'rotation', kind: t.kind, id: t.id, createdAt: t.createdAt, token: t }));
  const recItems: QueueItem[] = (wantRecoveries ? (rec.data?.items ?? []) : []).map((r) => ({
    source: 'recovery',
    kind: 'recovery',
    id: r.id,
    createdAt: r.createdAt,
    request: r,
  }));
  const items = [...rotItems, ...recItems].sort((a, b) => b.createdAt.localeCompare(a.createdAt));

  const rotTruncated = wantRotations && !!rot.data && rot.data.total > rot.data.items.length;
  const recTruncated = wantRecoveries && !!rec.data && rec.data.total > rec.data.items.length;
  const rotTotal = wantRotations ? (rot.data?.total ?? 0) : 0;
  const recTotal = wantRecoveries ? (rec.data?.total ?? 0) : 0;

  return {
    isPending: (wantRotations && rot.isPending) || (wantRecoveries && rec.isPending),
    error: (wantRotations ? rot.error : null) ?? (wantRecoveries ? rec.error : null),
    items,
    total: rotTotal + recTotal,
    truncated: rotTruncated || recTruncated,
    refetch: () => {
      if (wantRotations) void rot.refetch();
      if (wantRecoveries) void rec.refetch();
    },
  };
}
