import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { databaseOptions, durabilityNote, openDatabase, runMigrations } from './db/client';

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
  const database = await openDatabase(databaseOptions(config));
  await runMigrations(database);
  const app = await buildApp({ config, database });

  const setup = await app.container.setup.prepareSetupCode();
  if (setup) {
    const banner = [
      '',
      '  ┌──────────────────────────────────────────────────────────────┐',
      '  │ Keyturn first-run setup                                        │',
      `  │ Open http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}/setup and enter the setup code:`,
      `  │     ${setup.code}${setup.generated ? '' : '   (from SETUP_CODE)'}`,
      '  │ It works once; it creates the first admin and the admin master key.',
      '  └──────────────────────────────────────────────────────────────┘',
      '',
    ];
    process.stdout.write(`${banner.join('\n')}\n`);
  }

  const stopScheduler = app.container.maintenance.startScheduler(app.log);
  app.addHook('onClose', async () => {
    await stopScheduler();
  });
  await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ database: database.kind, dataDir: config.usePglite ? config.DATA_DIR : undefined }, 'Keyturn is listening');
  app.log[database.durability === 'page-cache' ? 'warn' : 'info']({ durability: database.durability }, durabilityNote(database.durability));

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
