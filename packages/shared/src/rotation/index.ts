// Node-only atomic-rotation core: re-encryption in batches through a storage interface.
export * from './backup-chunk';
export * from './engine';
