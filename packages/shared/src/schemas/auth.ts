import { z } from 'zod';
import { EmailSchema, IsoDate, NewPasswordSchema, PasswordInputSchema, text } from './common';

export const RoleSchema = z.enum(['user', 'admin']);
export type Role = z.infer<typeof RoleSchema>;

export const UserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  role: RoleSchema,
  keyVersion: z.number().int(),
  createdAt: IsoDate,
});
export type User = z.infer<typeof UserSchema>;

export const RegisterBodySchema = z.strictObject({ email: EmailSchema, password: NewPasswordSchema });
export type RegisterBody = z.infer<typeof RegisterBodySchema>;

export const LoginBodySchema = z.strictObject({ email: EmailSchema, password: PasswordInputSchema });
export type LoginBody = z.infer<typeof LoginBodySchema>;

/**
 * A new session. `token` is the bearer credential for integrators (it carries the session key,
 * so it is shown only here). The SPA ignores it and uses the httpOnly cookie set beside it, plus
 * `csrfToken` echoed in the `x-csrf-token` header on every unsafe request.
 */
export const SessionSchema = z.object({
  token: z.string(),
  csrfToken: z.string(),
  expiresAt: IsoDate,
  user: UserSchema,
});
export type Session = z.infer<typeof SessionSchema>;

export const MeSchema = z.object({
  user: UserSchema,
  session: z.object({ id: z.uuid(), keyVersion: z.number().int(), expiresAt: IsoDate, csrfToken: z.string() }),
});
export type Me = z.infer<typeof MeSchema>;

export const SetupStatusSchema = z.object({ needed: z.boolean() });
export const SetupBodySchema = z.strictObject({
  setupCode: text(200, 1),
  email: EmailSchema,
  password: NewPasswordSchema,
});
export type SetupBody = z.infer<typeof SetupBodySchema>;

/** An existing admin (by fresh password) adds another admin and shares the AMK with them. */
export const CreateAdminBodySchema = z.strictObject({
  email: EmailSchema,
  password: NewPasswordSchema,
  adminPassword: PasswordInputSchema,
});
export type CreateAdminBody = z.infer<typeof CreateAdminBodySchema>;
