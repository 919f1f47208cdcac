import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { databaseOptions, durabilityNote, openDatabase, runMigrations } from './db/client';
import { firstRunBanner } from './lib/banner';
import { createLogDestination } from './lib/log-destination';
import { createShutdown } from './lib/shutdown';

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
  // Logs never block the event loop nor the exit, whoever reads stdout (lib/log-destination.ts).
  const logs = createLogDestination(process.stdout);
  const database = await openDatabase(databaseOptions(config));
  await runMigrations(database);
  const app = await buildApp({ config, database, logStream: logs });

  const setup = await app.container.setup.prepareSetupCode();
  if (setup) logs.write(firstRunBanner({ host: config.HOST, port: config.PORT, code: setup.code, fromEnv: !setup.generated }));

  const stopMaintenance = app.container.maintenance.startScheduler(app.log);
  const stopDispatcher = app.container.dispatcher.start(app.log);
  const stopScheduler = () => Promise.all([stopMaintenance(), stopDispatcher()]).then(() => undefined);
  await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ database: database.kind, dataDir: config.usePglite ? config.DATA_DIR : undefined }, 'Keyturn is listening');
  app.log[database.durability === 'page-cache' ? 'warn' : 'info']({ durability: database.durability }, durabilityNote(database.durability));

  const shutdown = createShutdown({
    log: app.log,
    timeoutMs: config.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    stopScheduler,
    closeServer: () => app.close(),
    closeDatabase: () => database.close(),
    flushLogs: (ms) => logs.flush(ms),
    exit: (code) => {
      if (logs.dropped > 0) process.stderr.write(`Keyturn: ${logs.dropped} log lines were dropped: stdout was not being read\n`);
      process.exit(code);
    },
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e) => {
  console.error('Keyturn failed to start:', e);
  process.exit(1);
});
