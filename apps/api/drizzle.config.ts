import { defineConfig } from 'drizzle-kit';

// Generation only (`pnpm db:generate`): migrations are committed and applied at start-up.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema/index.ts',
  out: './src/db/migrations',
});
