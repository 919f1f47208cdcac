import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { AppError, ERROR_STATUS, ErrorBodySchema, type ErrorCode, ErrorCodeSchema, isAppError } from '../errors';
import { AuditQuerySchema, AuditVerifyQuerySchema } from './audit';
import { LoginBodySchema, RegisterBodySchema, SetupBodySchema } from './auth';
import { isCommonPassword } from './common-passwords';
import {
  EmailSchema,
  IdParamsSchema,
  NewPasswordSchema,
  PASSWORD_MAX,
  PASSWORD_MIN,
  PageQuerySchema,
  PasswordInputSchema,
  codePointLength,
  text,
} from './common';
import {
  AdminPasswordBodySchema,
  ROTATION_STATUSES,
  RejectBodySchema,
  RequestRotationBodySchema,
  RotateWithTokenBodySchema,
  RotationListQuerySchema,
} from './rotation';
import { CreateSecretBodySchema, SECRET_NAME_MAX, SecretNameSchema, UpdateSecretBodySchema } from './secrets';

const ok = (schema: z.ZodType, v: unknown): boolean => schema.safeParse(v).success;
const issueCodes = (schema: z.ZodType, v: unknown): string[] => {
  const r = schema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => i.code);
};

/** A string of n distinct-ish code points that no common-password rule catches. */
const strong = (n: number): string => {
  const base = 'Zq7!mP2#vL5@xR9$';
  let s = '';
  for (let i = 0; i < n; i++) s += base[i % base.length];
  return s;
};
/** n astral emoji, each one code point and two UTF-16 units. */
const emoji = (n: number): string => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x1f600 + (i % 64))).join('');

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('codePointLength', () => {
  it('counts code points, not UTF-16 units', () => {
    expect(codePointLength('abc')).toBe(3);
    expect(codePointLength('🔑')).toBe(1);
    expect('🔑'.length).toBe(2);
    expect(codePointLength(emoji(10))).toBe(10);
  });
});

describe('NewPasswordSchema', () => {
  it(`the bounds are ${PASSWORD_MIN} and ${PASSWORD_MAX} code points`, () => {
    expect(PASSWORD_MIN).toBe(12);
    expect(PASSWORD_MAX).toBe(1024);
  });

  it.each([12, 13, 64, 1023, 1024])('accepts %i code points', (n) => {
    const pw = strong(n);
    expect(codePointLength(pw)).toBe(n);
    expect(NewPasswordSchema.safeParse(pw)).toEqual({ success: true, data: pw });
  });

  it.each([0, 1, 11, 1025, 2048, 2049, 5000])('rejects %i code points', (n) => {
    expect(ok(NewPasswordSchema, strong(n))).toBe(false);
  });

  it('counts an emoji as one code point', () => {
    expect(ok(NewPasswordSchema, `${strong(11)}🔑`)).toBe(true); // 12 code points, 13 UTF-16 units
    expect(ok(NewPasswordSchema, `${strong(10)}🔑`)).toBe(false); // 11 code points, 12 UTF-16 units
    expect(ok(NewPasswordSchema, emoji(12))).toBe(true);
    expect(ok(NewPasswordSchema, emoji(11))).toBe(false); // 22 UTF-16 units, still only 11 characters
    expect(ok(NewPasswordSchema, emoji(1024))).toBe(true); // 2048 UTF-16 units
    expect(ok(NewPasswordSchema, emoji(1025))).toBe(false);
    expect(ok(NewPasswordSchema, `${strong(1023)}🔑`)).toBe(true);
    expect(ok(NewPasswordSchema, `${strong(1024)}🔑`)).toBe(false);
  });

  it('accepts non-Latin passwords', () => {
    expect(ok(NewPasswordSchema, 'пароль-для-меня')).toBe(true);
    expect(ok(NewPasswordSchema, '私の秘密のパスワードです')).toBe(true);
  });

  it.each([
    ['a lone high surrogate at the end', `${strong(12)}\ud83d`],
    ['a lone low surrogate at the start', `\ude00${strong(12)}`],
    ['a high surrogate followed by a letter', `${strong(6)}\ud83dx${strong(6)}`],
    ['a reversed surrogate pair', `${strong(12)}\ude00\ud83d`],
  ])('rejects %s', (_label, pw) => {
    expect(ok(NewPasswordSchema, pw)).toBe(false);
  });

  it.each([
    'Password1234567',
    'password12345678',
    'PASSWORD1234567',
    'aaaaaaaaaaaaaa',
    'abababababababab',
    '111111111111',
    'qwertyuiop1234',
    'correct horse battery staple',
    'Correct Horse Battery Staple',
    'abcdefghijklmnop',
    'zyxwvutsrqponm',
    '123456789012345',
    'Password2025!',
    'password123456789!!',
    'keyturnkeyturn',
  ])('rejects the common password %j', (pw) => {
    expect(isCommonPassword(pw)).toBe(true);
    expect(ok(NewPasswordSchema, pw)).toBe(false);
  });

  it('accepts passwords that are not common', () => {
    for (const pw of ['Zq7!mP2#vL5@', 'tangerine-walrus-42', 'my dog ate 3 blue socks', 'passwordIsNotMyName!']) {
      expect(isCommonPassword(pw)).toBe(false);
      expect(ok(NewPasswordSchema, pw)).toBe(true);
    }
  });

  it('verifies exactly as typed: no trimming, no case folding, no normalisation', () => {
    const pw = `  ${strong(12)}  `;
    expect(NewPasswordSchema.parse(pw)).toBe(pw);
    const nfd = 'cafe\u0301-cafe\u0301-cafe\u0301';
    expect(NewPasswordSchema.parse(nfd)).toBe(nfd);
  });

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 123456789012, ['Zq7!mP2#vL5@'], {}]) expect(ok(NewPasswordSchema, v)).toBe(false);
  });
});

describe('PasswordInputSchema', () => {
  it('only bounds the input: common or short passwords of old accounts still parse', () => {
    expect(ok(PasswordInputSchema, 'Password1234567')).toBe(true);
    expect(ok(PasswordInputSchema, 'x')).toBe(true);
    expect(ok(PasswordInputSchema, ' spaced ')).toBe(true);
    expect(PasswordInputSchema.parse(' spaced ')).toBe(' spaced ');
  });

  it('rejects empty, over-long and ill-formed input', () => {
    expect(ok(PasswordInputSchema, '')).toBe(false);
    expect(ok(PasswordInputSchema, 'x'.repeat(2 * PASSWORD_MAX + 1))).toBe(false);
    expect(ok(PasswordInputSchema, 'abc\ud800')).toBe(false);
  });
});

describe('EmailSchema', () => {
  it('trims and lowercases', () => {
    expect(EmailSchema.parse('  Alice.Smith@Example.COM \n')).toBe('alice.smith@example.com');
    expect(EmailSchema.parse('BOB+tag@sub.example.org')).toBe('bob+tag@sub.example.org');
  });

  it.each(['', '   ', 'alice', 'alice@', '@example.com', 'alice@example', 'a b@example.com', 'alice@@example.com', '<alice@example.com>', 'alice@exa mple.com', 'a,b@example.com'])(
    'rejects %j',
    (e) => {
      expect(ok(EmailSchema, e)).toBe(false);
    },
  );

  it('bounds the length at 254', () => {
    const local = 'a'.repeat(64);
    const domainFor = (total: number) => `${'b'.repeat(total - local.length - 1 - 4)}.com`;
    expect(ok(EmailSchema, `${local}@${domainFor(254)}`)).toBe(true);
    expect(ok(EmailSchema, `${local}@${domainFor(255)}`)).toBe(false);
  });
});

describe('strict objects refuse unknown keys (mass assignment, RELIABILITY B5)', () => {
  const reg = { email: 'alice@example.com', password: strong(16) };

  it('RegisterBodySchema refuses a role', () => {
    expect(ok(RegisterBodySchema, reg)).toBe(true);
    expect(issueCodes(RegisterBodySchema, { ...reg, role: 'admin' })).toContain('unrecognized_keys');
    expect(issueCodes(RegisterBodySchema, { ...reg, isAdmin: true })).toContain('unrecognized_keys');
  });

  it('RegisterBodySchema normalises the email and judges the password', () => {
    expect(RegisterBodySchema.parse({ email: ' Alice@Example.com ', password: reg.password }).email).toBe('alice@example.com');
    expect(ok(RegisterBodySchema, { ...reg, password: 'Password1234567' })).toBe(false);
    expect(ok(RegisterBodySchema, { email: reg.email })).toBe(false);
  });

  it('RotateWithTokenBodySchema refuses an extra status', () => {
    const body = { tokenId: UUID, tempPassword: 'ABCD-EFGH', currentPassword: 'old' };
    expect(ok(RotateWithTokenBodySchema, body)).toBe(true);
    expect(ok(RotateWithTokenBodySchema, { ...body, newPassword: strong(20) })).toBe(true);
    expect(issueCodes(RotateWithTokenBodySchema, { ...body, status: 'completed' })).toContain('unrecognized_keys');
    expect(ok(RotateWithTokenBodySchema, { ...body, newPassword: 'Password1234567' })).toBe(false);
    expect(ok(RotateWithTokenBodySchema, { ...body, tokenId: 'not-a-uuid' })).toBe(false);
    expect(ok(RotateWithTokenBodySchema, { ...body, tempPassword: '' })).toBe(false);
    expect(ok(RotateWithTokenBodySchema, { ...body, tempPassword: 'x'.repeat(201) })).toBe(false);
  });

  it.each([
    ['LoginBodySchema', LoginBodySchema, { email: 'a@b.co', password: 'x' }],
    ['SetupBodySchema', SetupBodySchema, { setupCode: 'ABCD-EFGH', email: 'a@b.co', password: strong(12) }],
    ['CreateSecretBodySchema', CreateSecretBodySchema, { name: 'db', value: 'pw' }],
    ['UpdateSecretBodySchema', UpdateSecretBodySchema, { value: 'pw' }],
    ['RequestRotationBodySchema', RequestRotationBodySchema, { reason: 'laptop lost' }],
    ['RejectBodySchema', RejectBodySchema, { reason: 'no' }],
    ['AdminPasswordBodySchema', AdminPasswordBodySchema, { adminPassword: 'x' }],
    ['IdParamsSchema', IdParamsSchema, { id: UUID }],
    ['PageQuerySchema', PageQuerySchema, {}],
    ['AuditQuerySchema', AuditQuerySchema, {}],
    ['AuditVerifyQuerySchema', AuditVerifyQuerySchema, {}],
  ] as [string, z.ZodType, Record<string, unknown>][])('%s accepts its own keys and refuses an extra one', (_n, schema, body) => {
    expect(ok(schema, body)).toBe(true);
    expect(issueCodes(schema, { ...body, userId: UUID })).toContain('unrecognized_keys');
  });
});

describe('text()', () => {
  it('refuses NUL anywhere', () => {
    const t = text(100);
    expect(ok(t, 'fine')).toBe(true);
    expect(ok(t, 'a\u0000b')).toBe(false);
    expect(ok(t, '\u0000')).toBe(false);
    expect(ok(t, 'end\u0000')).toBe(false);
    expect(ok(CreateSecretBodySchema, { name: 'db', value: 'p\u0000w' })).toBe(false);
    expect(ok(CreateSecretBodySchema, { name: 'd\u0000b', value: 'pw' })).toBe(false);
  });

  it('refuses lone surrogates and accepts paired ones', () => {
    const t = text(100);
    expect(ok(t, 'key 🔑')).toBe(true);
    expect(ok(t, 'bad \ud83d')).toBe(false);
    expect(ok(t, '\ude00 bad')).toBe(false);
  });

  it('applies min and max', () => {
    const t = text(5, 2);
    expect(ok(t, 'a')).toBe(false);
    expect(ok(t, 'ab')).toBe(true);
    expect(ok(t, 'abcde')).toBe(true);
    expect(ok(t, 'abcdef')).toBe(false);
    expect(ok(text(5), '')).toBe(true);
  });

  it('secret names are 1..200 and not blank', () => {
    expect(ok(SecretNameSchema, 'x'.repeat(SECRET_NAME_MAX))).toBe(true);
    expect(ok(SecretNameSchema, 'x'.repeat(SECRET_NAME_MAX + 1))).toBe(false);
    expect(ok(SecretNameSchema, '')).toBe(false);
    expect(ok(SecretNameSchema, '   ')).toBe(false);
  });

  it('an update needs a name, a value or both', () => {
    expect(ok(UpdateSecretBodySchema, {})).toBe(false);
    expect(ok(UpdateSecretBodySchema, { name: 'n' })).toBe(true);
    expect(ok(UpdateSecretBodySchema, { value: '' })).toBe(true);
  });

  it('a rotation reason must not be blank or over 500', () => {
    expect(ok(RequestRotationBodySchema, { reason: ' \t ' })).toBe(false);
    expect(ok(RequestRotationBodySchema, { reason: 'x'.repeat(500) })).toBe(true);
    expect(ok(RequestRotationBodySchema, { reason: 'x'.repeat(501) })).toBe(false);
    expect(ok(RejectBodySchema, { reason: '' })).toBe(false);
  });
});

describe('RotationListQuerySchema', () => {
  it('accepts every known status and defaults the page', () => {
    for (const status of ROTATION_STATUSES) {
      expect(RotationListQuerySchema.parse({ status })).toEqual({ status: [status], limit: 50, offset: 0 });
    }
    expect(RotationListQuerySchema.parse({})).toEqual({ limit: 50, offset: 0 });
  });

  it('accepts several comma-separated statuses, and refuses a repeated parameter (array)', () => {
    expect(RotationListQuerySchema.parse({ status: 'completed, finalized' }).status).toEqual(['completed', 'finalized']);
    expect(ok(RotationListQuerySchema, { status: 'completed,bogus' })).toBe(false);
    expect(ok(RotationListQuerySchema, { status: ['pending', 'approved'] })).toBe(false);
  });

  it('rejects an unknown status', () => {
    expect(ok(RotationListQuerySchema, { status: 'bogus' })).toBe(false);
    expect(ok(RotationListQuerySchema, { status: 'PENDING' })).toBe(false);
    expect(ok(RotationListQuerySchema, { status: '' })).toBe(false);
  });

  it('coerces query-string numbers and bounds them', () => {
    expect(RotationListQuerySchema.parse({ limit: '20', offset: '40' })).toEqual({ limit: 20, offset: 40 });
    for (const limit of ['0', '201', '-1', '1.5', 'abc']) expect(ok(RotationListQuerySchema, { limit })).toBe(false);
    expect(ok(RotationListQuerySchema, { offset: '-1' })).toBe(false);
    expect(ok(RotationListQuerySchema, { offset: '1000001' })).toBe(false);
  });

  it('rejects unknown keys', () => {
    expect(ok(RotationListQuerySchema, { status: 'pending', userId: UUID })).toBe(false);
  });
});

describe('AuditQuerySchema', () => {
  it('accepts ISO timestamps with an offset and refuses other dates', () => {
    expect(ok(AuditQuerySchema, { from: '2025-01-01T00:00:00Z', to: '2025-01-02T00:00:00+02:00' })).toBe(true);
    expect(ok(AuditQuerySchema, { from: 'yesterday' })).toBe(false);
    expect(ok(AuditQuerySchema, { outcome: 'maybe' })).toBe(false);
  });

  it('checkpoint hashes are 64 lowercase hex characters', () => {
    expect(ok(AuditVerifyQuerySchema, { checkpointSeq: '3', checkpointHash: 'a'.repeat(64) })).toBe(true);
    expect(ok(AuditVerifyQuerySchema, { checkpointHash: 'A'.repeat(64) })).toBe(false);
    expect(ok(AuditVerifyQuerySchema, { checkpointHash: 'a'.repeat(63) })).toBe(false);
  });
});

describe('errors', () => {
  it.each([
    ['TOKEN_REVOKED', 423],
    ['TOKEN_EXPIRED', 410],
    ['KEY_VERSION_STALE', 409],
    ['LOST_RACE', 409],
    ['INVALID_STATE', 409],
    ['VALIDATION_FAILED', 400],
    ['UNAUTHENTICATED', 401],
    ['INVALID_CREDENTIALS', 401],
    ['WRONG_TEMP_PASSWORD', 401],
    ['FORBIDDEN', 403],
    ['SELF_APPROVAL_FORBIDDEN', 403],
    ['NOT_FOUND', 404],
    ['PAYLOAD_TOO_LARGE', 413],
    ['RATE_LIMITED', 429],
    ['INTERNAL', 500],
    ['UNAVAILABLE', 503],
  ] as [ErrorCode, number][])('AppError %s maps to HTTP %i', (code, status) => {
    const e = new AppError(code, 'msg', { a: 1 });
    expect(e.status).toBe(status);
    expect(e.code).toBe(code);
    expect(e.details).toEqual({ a: 1 });
    expect(e.message).toBe('msg');
    expect(e.name).toBe('AppError');
    expect(e).toBeInstanceOf(Error);
    expect(isAppError(e)).toBe(true);
  });

  it('every code maps to an HTTP error status and is in the code schema', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(Number.isInteger(status) && status >= 400 && status <= 599).toBe(true);
      expect(ErrorCodeSchema.safeParse(code).success).toBe(true);
      expect(new AppError(code as ErrorCode, 'x').status).toBe(status);
    }
    expect(ErrorCodeSchema.safeParse('NOT_A_CODE').success).toBe(false);
  });

  it('isAppError is false for other errors and values', () => {
    expect(isAppError(new Error('x'))).toBe(false);
    expect(isAppError({ code: 'NOT_FOUND', status: 404 })).toBe(false);
    expect(isAppError(undefined)).toBe(false);
  });

  it('the error body schema', () => {
    expect(ok(ErrorBodySchema, { error: { code: 'NOT_FOUND', message: 'no', requestId: 'r1' } })).toBe(true);
    expect(ok(ErrorBodySchema, { error: { code: 'NOT_FOUND', message: 'no', requestId: 'r1', details: { x: 1 } } })).toBe(true);
    expect(ok(ErrorBodySchema, { error: { code: 'NOPE', message: 'no', requestId: 'r1' } })).toBe(false);
    expect(ok(ErrorBodySchema, { error: { code: 'NOT_FOUND', message: 'no' } })).toBe(false);
  });
});
