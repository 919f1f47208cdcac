// Node-only crypto core: pure functions, bytes in and bytes out, no I/O. AAD is always required.
export * from './aead';
export * from './aad';
export * from './kdf';
export * from './dek';
export * from './amk';
export * from './tokens';
export * from './fingerprint';
export * from './envelope';
export * from './recovery';
