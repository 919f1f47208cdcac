import { aad } from '../crypto/aad';
import { open } from '../crypto/aead';
import { RotationAbort } from './types';

/**
 * The proof every re-encrypted row passes before it can be written (DESIGN §3, "verify every new
 * ciphertext opens before commit"): both new blobs open with aead.open — the code every reader
 * uses — under the new key and the new version's AAD, to exactly the plaintexts the old blobs held.
 * The opened copies are wiped; the caller wipes `name` and `value`. Throws VERIFY_FAILED.
 */
export function proveReencrypted(userId: string, id: string, toKv: number, newDek: Buffer, nameCt: Buffer, valueCt: Buffer, name: Buffer, value: Buffer): void {
  try {
    const n2 = open(newDek, nameCt, aad.secretName(userId, id, toKv));
    const v2 = open(newDek, valueCt, aad.secretValue(userId, id, toKv));
    const same = n2.equals(name) && v2.equals(value);
    n2.fill(0);
    v2.fill(0);
    if (!same) throw new Error('mismatch');
  } catch {
    throw new RotationAbort('VERIFY_FAILED', `secret ${id} did not verify under the new key`);
  }
}
