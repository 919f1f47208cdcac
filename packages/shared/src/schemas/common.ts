import { z } from 'zod';
import { isCommonPassword } from './common-passwords';

/** Length in Unicode code points, not UTF-16 units: what a person counts. */
export const codePointLength = (s: string): number => [...s].length;

/** Lone surrogates cannot be encoded as UTF-8 and would be silently mangled: refuse them. */
const wellFormed = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = s.charCodeAt(i + 1);
      if (!(n >= 0xdc00 && n <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
};

/** No C0 control character (NUL, which Postgres text refuses, included) and no DEL. */
const noControlCharacters = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
};

/** A bounded string with no lone surrogates and no NUL bytes (Postgres text refuses NUL). */
export const text = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine(wellFormed, 'must be valid Unicode text')
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 1024;

/**
 * A password as chosen at registration, setup or rotation. Verified exactly as typed (no
 * trimming, no normalisation, no case folding), length counted in code points, no composition
 * rules, common passwords refused.
 */
export const NewPasswordSchema = z
  .string()
  .max(PASSWORD_MAX * 2)
  .refine(wellFormed, 'must be valid Unicode text')
  .refine((s) => codePointLength(s) >= PASSWORD_MIN, `must be at least ${PASSWORD_MIN} characters`)
  .refine((s) => codePointLength(s) <= PASSWORD_MAX, `must be at most ${PASSWORD_MAX} characters`)
  .refine((s) => !isCommonPassword(s), 'is too common; choose a longer or less predictable one');

/** A password offered for checking: only bounded, never judged (old accounts keep working). */
export const PasswordInputSchema = z
  .string()
  .min(1)
  .max(PASSWORD_MAX * 2)
  .refine(wellFormed, 'must be valid Unicode text');

export const EmailSchema = z
  .string()
  .max(1024)
  .trim()
  // A lone surrogate or a control character (NUL, which Postgres text refuses, included) is
  // refused with 400, never passed on or mangled into another address.
  .refine(wellFormed, 'must be valid Unicode text')
  .refine(noControlCharacters, 'must not contain control characters')
  .toLowerCase()
  .min(3)
  .max(254)
  .regex(/^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/, 'must be an email address');

export const IdSchema = z.uuid();
export const IdParamsSchema = z.strictObject({ id: IdSchema });
export const TokenIdParamsSchema = z.strictObject({ tokenId: IdSchema });

export const IsoDate = z.string();

export const PageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const OkSchema = z.object({ ok: z.literal(true) });
