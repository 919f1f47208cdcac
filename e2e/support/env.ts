import { existsSync } from 'node:fs';
import path from 'node:path';

/** Debian's Chromium: Playwright cannot download its own browser on these machines. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const E2E_DIR = path.resolve(import.meta.dirname, '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..');
export const API_DIR = path.join(REPO_ROOT, 'apps/api');
export const WEB_DIST_DIR = path.join(REPO_ROOT, 'apps/web/dist');

export const SKIP_REASON = 'E2E SKIPPED: chromium not installed';

export const chromiumAvailable = (): boolean => existsSync(CHROMIUM_PATH);
export const e2eRequired = (): boolean => process.env.E2E_REQUIRED === '1';

/**
 * What global setup hands to the tests. Workers are started after global setup and inherit its
 * process.env, so these names are the whole interface between the two.
 */
export const ENV = {
  baseURL: 'KEYTURN_E2E_BASE_URL',
  setupCode: 'KEYTURN_E2E_SETUP_CODE',
  adminEmail: 'KEYTURN_E2E_ADMIN_EMAIL',
  adminPassword: 'KEYTURN_E2E_ADMIN_PASSWORD',
  serverPid: 'KEYTURN_E2E_SERVER_PID',
  runDir: 'KEYTURN_E2E_RUN_DIR',
} as const;

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: is the e2e global setup running (playwright.config.ts)?`);
  return value;
}

export interface ServerInfo {
  baseURL: string;
  setupCode: string;
  /** The first admin every test shares: created by the first-run UI test or by ensureSetup(). */
  admin: { email: string; password: string };
}

export function serverInfo(): ServerInfo {
  return {
    baseURL: requireEnv(ENV.baseURL),
    setupCode: requireEnv(ENV.setupCode),
    admin: { email: requireEnv(ENV.adminEmail), password: requireEnv(ENV.adminPassword) },
  };
}
