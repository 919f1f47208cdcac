import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { openDatabase, runMigrations } from './db/client';
import { firstRunBanner } from './lib/banner';

/** Start-up only: config → database → migrations → app → listen → graceful close. */
async function main() {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  await runMigrations(database);
  const app = await buildApp({ config, database });

  const setup = await app.container.setup.prepareSetupCode();
  if (setup) process.stdout.write(firstRunBanner({ host: config.HOST, port: config.PORT, code: setup.code, fromEnv: !setup.generated }));

  const stopScheduler = app.container.maintenance.startScheduler(app.log);
  app.addHook('onClose', async () => {
    await stopScheduler();
  });
  await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ database: database.kind, dataDir: config.usePglite ? config.DATA_DIR : undefined }, 'Keyturn is listening');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    try {
      await app.close();
      await database.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e) => {
  console.error('Keyturn failed to start:', e);
  process.exit(1);
});
