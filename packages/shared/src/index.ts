// Browser-safe contract: zod schemas and error codes. Node-only code lives behind
// `@keyturn/shared/crypto` and `@keyturn/shared/rotation`.
export * from './errors';
export * from './schemas/common';
export * from './schemas/auth';
export * from './schemas/secrets';
export * from './schemas/rotation';
export * from './schemas/recovery';
export * from './schemas/notifications';
export * from './schemas/audit';
export * from './schemas/ops';
export { isCommonPassword } from './schemas/common-passwords';
