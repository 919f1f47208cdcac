/**
 * Configuration (issue 5 §5): one zod schema for every variable; defaults; every bound; a bad
 * value refused with a ConfigError that names the variable (and never echoes a secret value);
 * JWT_SECRET generated once into DATA_DIR (mode 0600) and reused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, EnvSchema, loadConfig, REPO_ROOT } from '../src/config';

const SECRET = 'a-test-jwt-secret-that-is-long-enough-0123456789';
const tmpDirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'keyturn-config-'));
  tmpDirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** loadConfig with a JWT_SECRET (so nothing is written) plus `env`. */
const load = (env: Record<string, string | undefined>) => loadConfig({ JWT_SECRET: SECRET, ...env });

/** The ConfigError that loading `env` throws. */
function refusal(env: Record<string, string | undefined>): ConfigError {
  try {
    load(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`accepted: ${JSON.stringify(env)}`);
}

describe('ops: config', () => {
  it('defaults: every variable has its documented default', () => {
    const c = load({});
    expect(c).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      DATA_DIR: path.join(REPO_ROOT, 'data'),
      LOG_LEVEL: 'info',
      WEB_DIST_DIR: path.join(REPO_ROOT, 'apps/web/dist'),
      SESSION_TTL_SECONDS: 8 * 3600,
      TOKEN_TTL_SECONDS: 86_400,
      PENDING_TTL_SECONDS: 7 * 86_400,
      LOCK_TIMEOUT_SECONDS: 600,
      BACKUP_RETENTION_SECONDS: 7 * 86_400,
      MAINTENANCE_INTERVAL_SECONDS: 300,
      AUDIT_VERIFY_INTERVAL_SECONDS: 600,
      TEMP_PASSWORD_MAX_ATTEMPTS: 5,
      SECRET_VALUE_MAX_BYTES: 65_536,
      ROTATION_BATCH_SIZE: 2_000,
      LOGIN_MAX_FAILURES: 10,
      LOGIN_LOCK_SECONDS: 900,
      ADMIN_REAUTH_MAX_FAILURES: 5,
      RATE_LIMIT_PER_MINUTE: 300,
      AUTH_RATE_LIMIT_PER_MINUTE: 30,
      COOKIE_SECURE: 'auto',
      SHUTDOWN_TIMEOUT_SECONDS: 30,
      HEALTH_CACHE_SECONDS: 2,
      kdf: { alg: 'argon2id', m: 19_456, t: 2, p: 1 },
      jwtSecret: SECRET,
      usePglite: true,
    });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.SETUP_CODE).toBeUndefined();
    expect(c.TRUST_PROXY).toBeUndefined();
    expect(c.METRICS_TOKEN).toBeUndefined();
    expect(c.instanceId).toMatch(new RegExp(`^${process.pid}-[0-9a-f]{8}$`));
    // the secret is consumed into jwtSecret, not kept under its variable name
    expect(c).not.toHaveProperty('JWT_SECRET');
  });

  it('values are parsed and derived: numbers coerced, DATA_DIR absolute, DATABASE_URL switches off PGlite, INSTANCE_ID kept', () => {
    const c = load({
      PORT: '8080',
      DATA_DIR: 'relative/dir',
      DATABASE_URL: 'postgres://keyturn@db.internal:5432/keyturn',
      INSTANCE_ID: 'api-2',
      LOG_LEVEL: 'debug',
      KDF_MEMORY_KIB: '65536',
      KDF_ITERATIONS: '3',
      KDF_PARALLELISM: '2',
      TOKEN_TTL_SECONDS: '60',
    });
    expect(c.PORT).toBe(8080);
    // relative to the repository root, whichever directory the process started in
    expect(c.DATA_DIR).toBe(path.resolve(REPO_ROOT, 'relative/dir'));
    expect(c.usePglite).toBe(false);
    expect(c.instanceId).toBe('api-2');
    expect(c.LOG_LEVEL).toBe('debug');
    expect(c.kdf).toEqual({ alg: 'argon2id', m: 65_536, t: 3, p: 2 });
    expect(c.TOKEN_TTL_SECONDS).toBe(60);
  });

  it('KDF_MAX_CONCURRENCY: 0 or unset means one fewer than the cores, at least 1; a number is kept', () => {
    const auto = Math.max(1, os.availableParallelism() - 1);
    expect(load({}).KDF_MAX_CONCURRENCY).toBe(auto);
    expect(load({ KDF_MAX_CONCURRENCY: '0' }).KDF_MAX_CONCURRENCY).toBe(auto);
    expect(load({ KDF_MAX_CONCURRENCY: '3' }).KDF_MAX_CONCURRENCY).toBe(3);
  });

  it('an empty value counts as unset (compose passes "VAR:-" defaults through as empty strings)', () => {
    const c = load({ PORT: '', TOKEN_TTL_SECONDS: '', DATABASE_URL: '', KDF_MEMORY_KIB: '' });
    expect(c.PORT).toBe(3000);
    expect(c.TOKEN_TTL_SECONDS).toBe(86_400);
    expect(c.usePglite).toBe(true);
    expect(c.kdf.m).toBe(19_456);
  });

  // [variable, refused values, accepted boundary values]
  const BOUNDS: [string, string[], string[]][] = [
    ['PORT', ['-1', '65536', 'abc', '80.5'], ['0', '65535']],
    ['SESSION_TTL_SECONDS', ['59', '-1', 'x'], ['60']],
    ['TOKEN_TTL_SECONDS', ['0', '-5', '1.5'], ['1']],
    ['PENDING_TTL_SECONDS', ['0'], ['1']],
    ['LOCK_TIMEOUT_SECONDS', ['0'], ['1']],
    ['BACKUP_RETENTION_SECONDS', ['-1'], ['0']],
    ['MAINTENANCE_INTERVAL_SECONDS', ['-1', 'often'], ['0', '1']],
    ['AUDIT_VERIFY_INTERVAL_SECONDS', ['-1', '1.5', 'hourly'], ['0', '1', '86400']],
    ['TEMP_PASSWORD_MAX_ATTEMPTS', ['0', '21'], ['1', '20']],
    ['SECRET_VALUE_MAX_BYTES', ['0', '900001'], ['1', '900000']],
    ['ROTATION_BATCH_SIZE', ['0', '50001'], ['1', '50000']],
    ['LOGIN_MAX_FAILURES', ['0', '101'], ['1', '100']],
    ['LOGIN_LOCK_SECONDS', ['0'], ['1']],
    ['ADMIN_REAUTH_MAX_FAILURES', ['0', '101'], ['1', '100']],
    ['RATE_LIMIT_PER_MINUTE', ['0'], ['1']],
    ['AUTH_RATE_LIMIT_PER_MINUTE', ['0'], ['1']],
    // argon2id: the OWASP floor (m ≥ 7 MiB) and the ceiling the crypto core enforces
    ['KDF_MEMORY_KIB', ['7167', '262145', '0'], ['262144']],
    ['KDF_ITERATIONS', ['0', '11'], ['2', '10']],
    ['KDF_PARALLELISM', ['0', '9'], ['1', '8']],
    ['KDF_MAX_CONCURRENCY', ['-1', '257', '1.5'], ['0', '1', '256']],
    ['SHUTDOWN_TIMEOUT_SECONDS', ['0', '3601', '2.5', 'soon'], ['1', '3600']],
    ['HEALTH_CACHE_SECONDS', ['-1', '61', '0.5'], ['0', '60']],
    ['METRICS_TOKEN', ['x'.repeat(15), 'x'.repeat(201)], ['x'.repeat(16), 'x'.repeat(200)]],
  ];

  for (const [name, refused, accepted] of BOUNDS) {
    it(`${name}: refuses ${refused.join(', ')}; accepts ${accepted.join(', ')}`, () => {
      for (const v of refused) {
        const e = refusal({ [name]: v });
        expect(e.message).toMatch(new RegExp(`\\b${name}\\b`));
        // only this variable is named
        expect(e.message.split('\n').filter((l) => /^\s+[A-Z_]+:/.test(l))).toHaveLength(1);
      }
      for (const v of accepted) expect(() => load({ [name]: v })).not.toThrow();
    });
  }

  it('argon2id m·t below the OWASP floor is refused at start-up, naming the variable', () => {
    // m = 7 MiB needs t ≥ 5 (m·t ≥ 35,840 KiB)
    expect(refusal({ KDF_MEMORY_KIB: '7168', KDF_ITERATIONS: '4' }).message).toMatch(/KDF_(MEMORY_KIB|ITERATIONS)/);
    expect(load({ KDF_MEMORY_KIB: '7168', KDF_ITERATIONS: '5' }).kdf).toEqual({ alg: 'argon2id', m: 7_168, t: 5, p: 1 });
  });

  it('enumerations, URLs and strings are checked too, each refusal naming its variable', () => {
    const cases: [string, string][] = [
      ['LOG_LEVEL', 'verbose'],
      ['COOKIE_SECURE', 'yes'],
      ['DATABASE_URL', 'not a url'],
      ['SETUP_CODE', 'short'],
      ['INSTANCE_ID', 'i'.repeat(101)],
    ];
    for (const [name, v] of cases) expect(refusal({ [name]: v }).message).toContain(name);
  });

  it('several bad values: every one is named in one message', () => {
    const m = refusal({ PORT: 'abc', TOKEN_TTL_SECONDS: '0', TEMP_PASSWORD_MAX_ATTEMPTS: '0', LOG_LEVEL: 'loud' }).message;
    for (const name of ['PORT', 'TOKEN_TTL_SECONDS', 'TEMP_PASSWORD_MAX_ATTEMPTS', 'LOG_LEVEL']) expect(m).toContain(name);
  });

  it('JWT_SECRET shorter than 32 characters is refused, naming it without echoing the value', () => {
    const weak = 'CANARY-weak-secret-31-chars-xyz';
    expect(weak).toHaveLength(31);
    const e = refusal({ JWT_SECRET: weak });
    expect(e.message).toContain('JWT_SECRET');
    expect(e.message).not.toContain(weak);
    expect(load({ JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toBe('x'.repeat(32));
    // a DATABASE_URL with a password is not echoed either
    const url = 'postgres://keyturn:CANARY-db-password@/ bad url';
    const e2 = refusal({ DATABASE_URL: url });
    expect(e2.message).toContain('DATABASE_URL');
    expect(e2.message).not.toContain('CANARY-db-password');
  });

  it('JWT_SECRET unset: 256 random bits generated into DATA_DIR/jwt-secret (mode 0600), reused on the next load', () => {
    const dir = path.join(tmp(), 'nested', 'data'); // created on demand
    const first = loadConfig({ DATA_DIR: dir });
    const file = path.join(dir, 'jwt-secret');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.jwtSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.jwtSecret);
    const second = loadConfig({ DATA_DIR: dir });
    expect(second.jwtSecret).toBe(first.jwtSecret);
    // another data directory gets another secret
    expect(loadConfig({ DATA_DIR: tmp() }).jwtSecret).not.toBe(first.jwtSecret);
  });

  it('DATABASE_URL without JWT_SECRET: refused, naming JWT_SECRET (each instance would make its own secret), and nothing written', () => {
    const dir = tmp();
    let error: unknown;
    try {
      loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://keyturn:CANARY-db-password@db.internal:5432/keyturn' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/\bJWT_SECRET\b/);
    expect(message).toMatch(/\bDATABASE_URL\b/);
    expect(message).not.toContain('CANARY-db-password');
    expect(existsSync(path.join(dir, 'jwt-secret'))).toBe(false);
    // with a JWT_SECRET it starts; on PGlite (no DATABASE_URL) the generated secret is still fine
    expect(loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://keyturn@db.internal:5432/keyturn', JWT_SECRET: SECRET }).jwtSecret).toBe(SECRET);
    expect(loadConfig({ DATA_DIR: dir }).usePglite).toBe(true);
  });

  it('a process that opens no sessions (the CLI) may use DATABASE_URL without JWT_SECRET, and writes no secret', () => {
    const dir = tmp();
    const c = loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://keyturn@db.internal:5432/keyturn' }, { sessions: false });
    expect(c.usePglite).toBe(false);
    expect(existsSync(path.join(dir, 'jwt-secret'))).toBe(false);
    // still a full Config; a JWT_SECRET given is kept, a bad one still refused
    expect(loadConfig({ DATA_DIR: dir, JWT_SECRET: SECRET }, { sessions: false }).jwtSecret).toBe(SECRET);
    expect(() => loadConfig({ DATA_DIR: dir, JWT_SECRET: 'short' }, { sessions: false })).toThrow(/JWT_SECRET/);
  });

  it('JWT_SECRET set: it wins and nothing is written to DATA_DIR', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir, JWT_SECRET: SECRET }).jwtSecret).toBe(SECRET);
    expect(existsSync(path.join(dir, 'jwt-secret'))).toBe(false);
  });
});

describe('every variable is documented where operators look (README table, .env.example, compose)', () => {
  const root = path.resolve(import.meta.dirname, '../../..');
  const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
  const names = Object.keys(EnvSchema.shape);
  it.each(names)('%s', (name) => {
    // A row of the configuration table (some rows name two or three related variables).
    expect(read('README.md'), 'README configuration table').toMatch(new RegExp(`^\\| [^\\n]*\`${name}\`[^\\n]*\\|`, 'm'));
    expect(read('.env.example')).toMatch(new RegExp(`^# ${name}=`, 'm'));
    // Fixed by the image or meaningless with the bundled Postgres: everything else is passed through.
    const notInCompose = ['PORT', 'HOST', 'DATA_DIR', 'WEB_DIST_DIR', 'PGLITE_FSYNC'];
    if (!notInCompose.includes(name)) expect(read('docker-compose.yml')).toMatch(new RegExp(`^\\s+${name}: `, 'm'));
  });
});
