export * from './users';
export * from './secrets';
export * from './rotation';
export * from './audit';
export * from './recovery';
export * from './notifications';
