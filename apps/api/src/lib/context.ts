import type { Role } from '@keyturn/shared';

/** Who acts, and from where: passed from routes into services for authorization and audit. */
export interface Actor {
  id: string | null;
  email: string | null;
  role: Role | 'system' | 'anonymous';
}

export interface RequestCtx {
  requestId: string;
  clientAddress: string | null;
  actor: Actor;
}

export const systemCtx = (requestId: string, instanceId: string): RequestCtx => ({
  requestId,
  clientAddress: null,
  actor: { id: null, email: `system:${instanceId}`, role: 'system' },
});
