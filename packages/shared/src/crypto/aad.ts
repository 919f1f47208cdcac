/**
 * The fixed associated-data strings. Each names the purpose, the owner and the key version, so
 * a blob only opens in the one place it was written for. Changing any of these strings makes
 * every stored blob unreadable: they are part of the storage format.
 */
export const aad = {
  secretName: (userId: string, secretId: string, kv: number) => `keyturn/secret-name/v1|user=${userId}|secret=${secretId}|kv=${kv}`,
  secretValue: (userId: string, secretId: string, kv: number) => `keyturn/secret-value/v1|user=${userId}|secret=${secretId}|kv=${kv}`,
  dekWrap: (userId: string, kv: number) => `keyturn/dek-wrap/v1|user=${userId}|kv=${kv}`,
  sessionDek: (sessionId: string, userId: string, kv: number) => `keyturn/session-dek/v1|session=${sessionId}|user=${userId}|kv=${kv}`,
  aDekPending: (userId: string, kv: number) => `keyturn/adek-pending/v1|user=${userId}|kv=${kv}`,
  aDekFinal: (userId: string, kv: number) => `keyturn/adek-final/v1|user=${userId}|kv=${kv}`,
  amkWrap: (adminId: string, amkId: string) => `keyturn/amk-wrap/v1|admin=${adminId}|amk=${amkId}`,
  recoveryDek: (userId: string, requestId: string, kv: number) => `keyturn/recovery-dek/v1|user=${userId}|request=${requestId}|kv=${kv}`,
  recoveryAmk: (adminId: string, requestId: string, amkId: string) => `keyturn/recovery-amk/v1|admin=${adminId}|request=${requestId}|amk=${amkId}`,
} as const;
