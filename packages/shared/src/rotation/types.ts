/** What the re-encryption core and its worker share. */

export interface SecretCipherRow {
  id: string;
  keyVersion: number;
  nameCt: Buffer;
  valueCt: Buffer;
}

/** Why a rotation refused to commit. The code is stored as the token's failure reason. */
export class RotationAbort extends Error {
  constructor(
    readonly reasonCode: 'KEY_CHANGED' | 'COUNT_MISMATCH' | 'VERIFY_FAILED' | 'DECRYPT_FAILED' | 'STALE_ROWS',
    message: string,
  ) {
    super(message);
    this.name = 'RotationAbort';
  }
}
