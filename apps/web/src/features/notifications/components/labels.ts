import type { DeliveryStatus, NotificationEvent } from '@keyturn/shared';

/** What each event is, in product words (the admin's queue table). */
export const EVENT_LABEL: Record<NotificationEvent, string> = {
  'rotation.requested': 'Rotation requested',
  'rotation.approved': 'Rotation approved',
  'rotation.rejected': 'Rotation rejected',
  'rotation.expiring': 'Approval expiring',
  'rotation.completed': 'Rotation completed',
  'rotation.finalized': 'Rotation finalized',
  'rotation.failed': 'Rotation failed',
  'rotation.revoked': 'Rotation token revoked',
  'recovery.requested': 'Recovery requested',
  'recovery.approved': 'Recovery approved',
  'recovery.completed': 'Recovery completed',
  'admin.created': 'Administrator added',
  'audit.verify_failed': 'Audit chain check failed',
  'maintenance.failed': 'Maintenance failed',
};

export const DELIVERY_STATUS_LABEL: Record<DeliveryStatus, string> = {
  pending: 'Pending',
  retrying: 'Retrying',
  sent: 'Sent',
  dead: 'Dead',
};

/** Dark shades: white text on them stays above 4.5:1. */
export const DELIVERY_STATUS_COLOR: Record<DeliveryStatus, string> = {
  pending: '#8a5300',
  retrying: '#a13c07',
  sent: '#2b6a33',
  dead: 'red.9',
};

/** The places a notification may send someone to, by what the link says. */
const LINK_LABEL: Record<string, string> = {
  '/admin/key_rotation_management': 'Open rotation management',
  '/admin/health': 'Open system health',
  '/admin/audit': 'Open the audit log',
  '/admin/admins': 'Open administrators',
  '/admin/notifications': 'Open notification delivery',
  '/rotation_request': 'Open my rotation requests',
  '/key_rotation_with_token': 'Open the key rotation page',
  '/account': 'Open my account',
  '/': 'Open my vault',
};

/** Only a path of this app (never another origin, nor `//host`): anything else is not shown as a link. */
export function safeAppPath(link: string | null): string | null {
  if (!link?.startsWith('/') || link.startsWith('//') || link.includes('\\')) return null;
  return link;
}

export function linkLabel(path: string): string {
  const bare = path.split(/[?#]/)[0] ?? path;
  return LINK_LABEL[bare] ?? 'Open';
}

/** Pages only administrators may open. */
export const isAdminPath = (path: string): boolean => path === '/admin' || path.startsWith('/admin/') || /^\/admin[?#]/.test(path);
