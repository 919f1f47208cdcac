import { z } from 'zod';
import { IsoDate, text } from './common';

export const SECRET_NAME_MAX = 200;
/** Hard schema bound; the configured byte limit (default 64 KiB) is enforced by the service. */
export const SECRET_VALUE_HARD_MAX = 1_000_000;

export const SecretMetaSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  keyVersion: z.number().int(),
  createdAt: IsoDate,
  updatedAt: IsoDate,
});
export type SecretMeta = z.infer<typeof SecretMetaSchema>;

export const SecretSchema = SecretMetaSchema.extend({ value: z.string() });
export type Secret = z.infer<typeof SecretSchema>;

export const SecretListSchema = z.object({ items: z.array(SecretMetaSchema) });

export const SecretNameSchema = text(SECRET_NAME_MAX, 1).refine((s) => s.trim().length > 0, 'must not be blank');
export const SecretValueSchema = text(SECRET_VALUE_HARD_MAX);

export const CreateSecretBodySchema = z.strictObject({ name: SecretNameSchema, value: SecretValueSchema });
export type CreateSecretBody = z.infer<typeof CreateSecretBodySchema>;

export const UpdateSecretBodySchema = z
  .strictObject({ name: SecretNameSchema.optional(), value: SecretValueSchema.optional() })
  .refine((b) => b.name !== undefined || b.value !== undefined, 'give a name, a value or both');
export type UpdateSecretBody = z.infer<typeof UpdateSecretBodySchema>;
