import { hkdfSync, randomBytes } from 'node:crypto';
import { open, seal, wipe } from '@keyturn/shared/crypto';

/**
 * Webhook signing secrets (README "Webhooks", W1): 32 random bytes per endpoint, given to the
 * admin once as `whsec_<base64>` (Standard Webhooks), stored only sealed with AES-256-GCM under a
 * key derived from JWT_SECRET. The AAD names the endpoint and the key version, so a ciphertext
 * copied onto another endpoint's row does not open. Changing JWT_SECRET makes the stored secrets
 * unreadable: those endpoints' deliveries fail (visibly) until they are created again.
 */
export const WEBHOOK_SECRET_BYTES = 32;
export const WEBHOOK_KEY_VERSION = 1;

// The same HKDF-SHA256 shape as the crypto core's sub-keys (empty salt, a purpose string as info).
const webhookKey = (jwtSecret: string): Buffer => Buffer.from(hkdfSync('sha256', Buffer.from(jwtSecret, 'utf8'), Buffer.alloc(0), 'keyturn/webhook-secret/v1', 32));
const webhookAad = (endpointId: string, kv: number) => `keyturn/webhook-secret/v1|endpoint=${endpointId}|kv=${kv}`;

export const formatWebhookSecret = (raw: Uint8Array): string => `whsec_${Buffer.from(raw).toString('base64')}`;

export function newWebhookSecret(jwtSecret: string, endpointId: string): { raw: Buffer; sealed: Buffer; keyVersion: number } {
  const raw = randomBytes(WEBHOOK_SECRET_BYTES);
  const key = webhookKey(jwtSecret);
  try {
    return { raw, sealed: seal(key, raw, webhookAad(endpointId, WEBHOOK_KEY_VERSION)), keyVersion: WEBHOOK_KEY_VERSION };
  } finally {
    wipe(key);
  }
}

/** The raw secret; throws IntegrityError when it cannot be opened (another JWT_SECRET, another row). */
export function openWebhookSecret(jwtSecret: string, endpointId: string, sealed: Uint8Array, keyVersion: number): Buffer {
  const key = webhookKey(jwtSecret);
  try {
    return open(key, sealed, webhookAad(endpointId, keyVersion));
  } finally {
    wipe(key);
  }
}
