import type { Database, Db } from '../../db/client';
import { migrationsCurrent } from '../../db/client';
import type { AmkRepo } from '../setup/amk.repo';
import { reuseFor } from './reuse';

export interface Readiness {
  ready: boolean;
  checks: { database: boolean; migrations: boolean; amk: boolean };
}

export interface HealthDeps {
  database: Database;
  db: Db;
  amkRepo: Pick<AmkRepo, 'get'>;
  setup: { needed(): Promise<boolean> };
  maintenance: { refreshGauges(): Promise<void> };
  /** HEALTH_CACHE_SECONDS in ms. */
  cacheMs: number;
}

/** A readiness round that takes longer than this counts as "database not ready". */
export const READY_TIMEOUT_MS = 5_000;

/**
 * What /readyz and /metrics ask the database, at most once per HEALTH_CACHE_SECONDS however many
 * probes and scrapes arrive (concurrent ones share the round in flight). See README.md here.
 */
export function createHealthService(deps: HealthDeps) {
  async function check(): Promise<Readiness> {
    const checks = { database: false, migrations: false, amk: false };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('readiness timed out')), READY_TIMEOUT_MS);
    });
    try {
      await Promise.race([
        (async () => {
          await deps.database.ping();
          checks.database = true;
          checks.migrations = await migrationsCurrent(deps.database);
          // Before first-run setup there is no AMK yet: still ready, so the setup page can load.
          checks.amk = (await deps.amkRepo.get(deps.db)) !== null || (await deps.setup.needed());
        })(),
        timeout,
      ]);
    } catch {
      /* reported through the checks */
    } finally {
      clearTimeout(timer);
    }
    return { ready: checks.database && checks.migrations && checks.amk, checks: { ...checks } };
  }

  return {
    /** Database reachable, migrations current, AMK present (or setup still to do). */
    readiness: reuseFor(deps.cacheMs, check),
    /** The database-backed gauges of /metrics (tokens by state, the audit verdict). */
    refreshGauges: reuseFor(deps.cacheMs, async () => {
      try {
        await deps.maintenance.refreshGauges();
      } catch {
        /* the database may be down: the process metrics are still served */
      }
    }),
  };
}
export type HealthService = ReturnType<typeof createHealthService>;
