// Node-only atomic-rotation core: re-encryption in batches through a storage interface.
export * from './engine';
