/**
 * Hardening (issue 10, items 8 and 13): the first-run setup code carries at least 128 bits
 * (generated or given in SETUP_CODE), is typed back like a temporary password (any case, with or
 * without dashes), and wrong codes are capped and audited.
 */
import { generateSetupCode } from '@keyturn/shared/crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import { SETUP_CODE_MAX_FAILURES } from '../src/modules/setup/setup.service';
import { api, countRows, describeBoth, expectError, queryRows, strongPassword, uniqueEmail, useTestApp } from './harness';

describe('SETUP_CODE must carry at least 128 bits when random', () => {
  const base = { DATA_DIR: '/tmp/keyturn-config-test', JWT_SECRET: 'x'.repeat(40) };
  it.each(['correct-horse-battery', 'abcdefghij0123456789', 'kt-setup-0123456789', 'ÅÄÖ'.repeat(12), '0123456789abcdef0123456789abcde', 'A'.repeat(40), '0101010101'.repeat(4)])('refuses %j, naming SETUP_CODE', (code) => {
    expect(() => loadConfig({ ...base, SETUP_CODE: code })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SETUP_CODE: code })).toThrow(/SETUP_CODE/);
  });
  it.each(['0123456789abcdef0123456789abcdef', generateSetupCode(), 'KT-SETUP-0123-4567-89AB-CDEF-0123-4567-89'])('accepts %j', (code) => {
    expect(loadConfig({ ...base, SETUP_CODE: code }).SETUP_CODE).toBe(code);
  });
});

describeBoth('the setup code is typed like a temporary password, and guessing it is capped', (backend) => {
  const t = useTestApp(backend, { env: { LOGIN_LOCK_SECONDS: '600' } });
  const setup = (setupCode: string) => api(t.app).post('/api/setup', { setupCode, email: uniqueEmail('first-admin'), password: strongPassword() });

  it(`after ${SETUP_CODE_MAX_FAILURES} wrong codes, even the right one is refused with 429 (audited); nothing is created`, async () => {
    const prepared = await t.app.container.setup.prepareSetupCode();
    expect(prepared?.code).toMatch(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);
    for (let i = 0; i < SETUP_CODE_MAX_FAILURES; i++) expectError(await setup(`WRONG-CODE-${i}`), 403, 'FORBIDDEN');
    const res = await setup(prepared!.code);
    expectError(res, 429, 'RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(await countRows(t.database, 'users')).toBe(0);
    const denied = await queryRows<{ reason: string }>(t.database, `select details->>'reason' as reason from audit_events where action = 'setup.admin_created' and outcome = 'denied'`);
    expect(denied.filter((d) => d.reason === 'wrong_setup_code')).toHaveLength(SETUP_CODE_MAX_FAILURES);
    expect(denied.filter((d) => d.reason === 'throttled')).toHaveLength(1);
    await queryRows(t.database, `delete from throttles where key = 'setup-code'`);
  });

  it('accepts the code in lower case and without dashes (and with look-alike letters)', async () => {
    const prepared = await t.app.container.setup.prepareSetupCode();
    const typed = prepared!.code.toLowerCase().replaceAll('-', '').replaceAll('0', 'o').replaceAll('1', 'l');
    const res = await setup(` ${typed} `);
    expect(res.statusCode, res.body).toBe(201);
  });
});
