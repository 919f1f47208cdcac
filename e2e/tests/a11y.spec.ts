import {
  type LoggedIn,
  approveRecovery,
  approveRotation,
  createSecret,
  ensureSetup,
  finalizeRotation,
  myRotations,
  registerUser,
  rejectRotation,
  requestRecovery,
  requestRotation,
  rotateWithToken,
  setupNeeded,
  strongPassword,
} from '../support/api';
import { A11yReport } from '../support/a11y';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { type StartedServer, startApiServer } from '../support/server';
import { adminRecoveryRow, adminRow, field, newPersonPage, openAdminTab, signInFast } from '../support/ui';

skipWithoutChromium();

/**
 * An axe-core scan of every page (and the dialogs that carry a flow) with zero serious or critical
 * violations. Each test scans all its screens, then fails once with the full list.
 */

/** A dialog is scanned on its own: the page behind it was scanned in its own state already. */
const DIALOG = { include: '[role="dialog"]' };

async function verdict(report: A11yReport): Promise<void> {
  await test.info().attach('axe-findings.json', { body: report.json(), contentType: 'application/json' });
  expect(report.blocking, report.summary()).toEqual([]);
}

// The setup page needs a server nobody has set up: warm the short-TTL one up now (its database
// takes ~30 s to initialise), the last test of this file uses it before rotation-failures does.
test.beforeAll(({ shortTtlServer }) => {
  shortTtlServer.ready().catch(() => undefined);
});

test('sign-in and registration pages', async ({ page, request }) => {
  await ensureSetup(request);
  const report = new A11yReport();

  await page.goto('/login');
  await expect(page.getByRole('heading', { name: 'Sign in', level: 1 })).toBeVisible();
  await report.scan(page, 'login');

  await field(page, 'Email').fill('nobody@keyturn.test');
  await field(page, 'Password').fill('not the right password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await report.scan(page, 'login (wrong password)');

  await page.getByRole('link', { name: 'Create one' }).click();
  await expect(page.getByRole('heading', { name: 'Create your account', level: 1 })).toBeVisible();
  await report.scan(page, 'register');
  await field(page, 'Password').fill('short');
  await field(page, 'Confirm password').fill('different');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText('Strength: Too short')).toBeVisible();
  await report.scan(page, 'register (validation errors, strength meter)');

  await verdict(report);
});

test('user screens: vault, rotation request, rotation execution and its result', async ({ page, request }) => {
  test.setTimeout(90_000);
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  for (const [name, value] of [
    ['GitHub token', `ghp_${crypto.randomUUID()}`],
    ['Staging DB password', `pg-${crypto.randomUUID()}`],
    ['Wi-Fi at the office', 'correct horse battery staple'],
  ]) {
    await createSecret(request, user, { name: name!, value: value! });
  }
  const report = new A11yReport();

  await signInFast(page, user);
  await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(3);
  await report.scan(page, 'vault');
  const item = page.getByRole('listitem', { name: 'GitHub token' });
  await item.getByRole('button', { name: 'Reveal GitHub token' }).click();
  await expect(item.getByTestId('secret-value')).toBeVisible();
  await report.scan(page, 'vault (a value revealed)');
  await page.getByRole('button', { name: 'Add secret', exact: true }).click();
  const add = page.getByRole('dialog', { name: 'Add a secret' });
  await expect(add).toBeVisible();
  await report.scan(page, 'vault: add-secret dialog', DIALOG);
  await add.getByRole('button', { name: 'Cancel' }).click();
  await expect(add).toBeHidden();

  await page.goto('/rotation_request');
  await expect(page.getByText('You have not requested a key rotation yet.')).toBeVisible();
  await report.scan(page, 'rotation request (none yet)');
  await field(page, 'Reason').fill('Quarterly rotation');
  await page.getByRole('button', { name: 'Request key rotation' }).click();
  await expect(page.getByTestId('rotation-request').getByTestId('rotation-status')).toHaveText('Pending approval');
  await report.scan(page, 'rotation request (pending, fingerprint and timeline)');

  const [token] = await myRotations(request, user);
  const { tempPassword } = await approveRotation(request, admin, token!.id);
  await page.reload();
  await expect(page.getByTestId('rotation-request').getByTestId('rotation-status')).toHaveText('Approved');
  await report.scan(page, 'rotation request (approved, countdown)');

  await page.getByTestId('rotation-request').getByRole('link', { name: 'Run key rotation' }).click();
  await expect(field(page, 'Rotation token id')).toHaveValue(token!.id);
  await report.scan(page, 'rotation execution form');
  await field(page, 'Temporary password').fill('wrong temporary password');
  await field(page, 'Current password').fill(user.password);
  const newPassword = strongPassword();
  await field(page, 'New password').fill(newPassword);
  await field(page, 'Confirm new password').fill(newPassword);
  await page.getByRole('button', { name: 'Rotate my keys' }).click();
  await expect(page.getByRole('alert')).toContainText('tries left');
  await report.scan(page, 'rotation execution (wrong temporary password)');
  await field(page, 'Temporary password').fill(tempPassword);
  await page.getByRole('button', { name: 'Rotate my keys' }).click();
  await expect(page.getByRole('heading', { name: 'Key rotation complete' })).toBeVisible({ timeout: 30_000 });
  await report.scan(page, 'rotation execution result');

  await page.goto('/no/such/page');
  await expect(page.getByRole('heading', { name: 'Page not found', level: 1 })).toBeVisible();
  await report.scan(page, 'not found');

  await verdict(report);
});

test('admin screens: rotation management (every tab and dialog), system health, audit log, administrators', async ({ page, request }) => {
  test.setTimeout(120_000);
  const admin = await ensureSetup(request);
  // One request in every tab: pending (two), approved, awaiting finalization, history (finalized
  // and rejected). Arranged in parallel: every step is an argon2 derivation on the server.
  const users = await Promise.all([1, 2, 3, 4, 5, 6].map(() => registerUser(request)));
  const [pending1, pending2, approved, completed, finalized, rejected] = users as [LoggedIn, LoggedIn, LoggedIn, LoggedIn, LoggedIn, LoggedIn];
  const ids = new Map(
    await Promise.all(users.map(async (u) => [u.email, (await requestRotation(request, u, `Routine rotation for ${u.email}`)).id] as const)),
  );
  const id = (u: LoggedIn) => ids.get(u.email)!;
  await Promise.all([
    approveRotation(request, admin, id(approved)),
    rejectRotation(request, admin, id(rejected), 'Not needed: no incident.'),
    ...[completed, finalized].map(async (u) => {
      const { tempPassword } = await approveRotation(request, admin, id(u));
      await rotateWithToken(request, u, { tokenId: id(u), tempPassword });
    }),
  ]);
  await finalizeRotation(request, admin, id(finalized));

  const report = new A11yReport();
  await signInFast(page, admin, '/admin/key_rotation_management');
  await expect(adminRow(page, pending1.email)).toBeVisible();
  await report.scan(page, 'rotation management: Pending tab');

  await adminRow(page, pending2.email).getByRole('button', { name: 'Reject' }).click();
  const reject = page.getByRole('dialog', { name: 'Reject key rotation' });
  await expect(reject).toBeVisible();
  await report.scan(page, 'rotation management: reject dialog', DIALOG);
  await reject.getByRole('button', { name: 'Cancel' }).click();
  await expect(reject).toBeHidden();

  await adminRow(page, pending1.email).getByRole('button', { name: 'Approve' }).click();
  const approve = page.getByRole('dialog', { name: 'Approve key rotation' });
  await expect(approve).toBeVisible();
  await report.scan(page, 'rotation management: approve dialog (password prompt)', DIALOG);
  await field(approve, 'Your admin password').fill(admin.password);
  await approve.getByRole('button', { name: 'Approve', exact: true }).click();
  const shown = page.getByRole('dialog', { name: 'Temporary password' });
  await expect(shown.getByTestId('temp-password')).toBeVisible();
  await report.scan(page, 'rotation management: temporary password dialog', DIALOG);
  await shown.getByRole('button', { name: 'I have copied it — close' }).click();
  await expect(shown).toBeHidden();

  await openAdminTab(page, 'Approved');
  await expect(adminRow(page, approved.email)).toBeVisible();
  await report.scan(page, 'rotation management: Approved tab');

  await openAdminTab(page, 'Awaiting finalization');
  await expect(adminRow(page, completed.email)).toBeVisible();
  await report.scan(page, 'rotation management: Awaiting finalization tab');
  await adminRow(page, completed.email).getByRole('button', { name: 'Finalize' }).click();
  const finalize = page.getByRole('dialog', { name: 'Finalize key rotation' });
  await expect(finalize).toBeVisible();
  await report.scan(page, 'rotation management: finalize dialog', DIALOG);
  await finalize.getByRole('button', { name: 'Cancel' }).click();
  await adminRow(page, completed.email).getByRole('button', { name: 'Restore' }).click();
  const restore = page.getByRole('dialog', { name: 'Restore previous keys' });
  await expect(restore).toBeVisible();
  await report.scan(page, 'rotation management: restore dialog', DIALOG);
  await restore.getByRole('button', { name: 'Cancel' }).click();
  await expect(restore).toBeHidden();

  await openAdminTab(page, 'History');
  const done = adminRow(page, finalized.email);
  await expect(done).toBeVisible();
  await done.getByRole('button', { name: 'Show timeline' }).click();
  await expect(done.getByLabel('Status timeline')).toBeVisible();
  await report.scan(page, 'rotation management: History tab (timeline open)');

  await page.getByRole('link', { name: 'System health' }).click();
  await expect(page.getByRole('heading', { name: 'System health', level: 1 })).toBeVisible();
  await expect(page.getByTestId('audit-verdict')).toBeVisible();
  await report.scan(page, 'system health');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
  await expect(page.getByRole('table', { name: 'Audit events' })).toBeVisible();
  await report.scan(page, 'audit log');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administrators' }).click();
  await expect(page.getByRole('heading', { name: 'Administrators', level: 1 })).toBeVisible();
  await report.scan(page, 'administrators');
  await field(page, 'Password').fill('short');
  await page.getByRole('button', { name: 'Add administrator' }).click();
  await expect(page.getByText('Strength: Too short')).toBeVisible();
  await report.scan(page, 'administrators (validation errors, strength meter)');

  await verdict(report);
});

test('account recovery and account screens: forgot password, recover, account, notice, admin recovery row and approve dialog', async ({
  page,
  browser,
  request,
  server,
}) => {
  test.setTimeout(120_000);
  const admin = await ensureSetup(request);
  // `noticed` has an approved recovery (its copy was opened: a notice); `waiting` a pending one.
  const [noticed, waiting] = await Promise.all([registerUser(request), registerUser(request)]);
  const [opened, pending] = await Promise.all([
    requestRecovery(request, noticed.email, strongPassword()),
    requestRecovery(request, waiting.email, strongPassword()),
  ]);
  await approveRecovery(request, admin, opened.requestId);
  const report = new A11yReport();

  await page.goto('/login');
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await expect(page.getByRole('heading', { name: 'Forgot your password?', level: 1 })).toBeVisible();
  await report.scan(page, 'forgot password');
  const chosen = strongPassword();
  await field(page, 'Email').fill(`nobody-${crypto.randomUUID()}@keyturn.test`);
  await field(page, 'New password').fill(chosen);
  await field(page, 'Confirm new password').fill(chosen);
  await page.getByRole('button', { name: 'Request account recovery' }).click();
  await expect(page.getByRole('heading', { name: 'Recovery requested', level: 1 })).toBeVisible();
  await report.scan(page, 'forgot password (requested: fingerprint, request id, expiry)');

  await page.getByRole('link', { name: 'Complete the recovery' }).click();
  await expect(page.getByRole('heading', { name: 'Complete account recovery', level: 1 })).toBeVisible();
  await report.scan(page, 'recover');
  await field(page, 'New password').fill(chosen);
  await page.getByRole('button', { name: 'Complete recovery' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await report.scan(page, 'recover (refused: not approved)');

  // The old password still works until the recovery is completed: the owner sees the notice.
  await signInFast(page, noticed);
  await expect(page.getByRole('alert').filter({ hasText: 'opened your recovery copy' })).toBeVisible();
  await report.scan(page, 'vault with the recovery notice');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click();
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible();
  await report.scan(page, 'account');

  const adminPage = await newPersonPage(browser, server.baseURL);
  await signInFast(adminPage, admin, '/admin/key_rotation_management');
  const row = adminRecoveryRow(adminPage, waiting.email);
  await expect(row.getByTestId('fingerprint')).toHaveText(pending.fingerprint);
  await row.getByRole('button', { name: 'Show timeline' }).click();
  await expect(row.getByLabel('Status timeline')).toBeVisible();
  await report.scan(adminPage, 'rotation management: Pending tab with a recovery row (timeline open)');
  await row.getByRole('button', { name: 'Approve' }).click();
  const approve = adminPage.getByRole('dialog', { name: 'Approve account recovery' });
  await expect(approve.getByRole('button', { name: 'Approve recovery' })).toBeDisabled();
  await approve.getByRole('checkbox').check();
  await expect(approve.getByRole('button', { name: 'Approve recovery' })).toBeEnabled();
  await report.scan(adminPage, 'rotation management: approve recovery dialog (confirmed)', DIALOG);
  await adminPage.context().close();

  await verdict(report);
});

test('first-run setup page (on a server nobody has set up yet)', async ({ browser, playwright, shortTtlServer }) => {
  test.setTimeout(150_000); // the second server may still be initialising its database
  let srv = await shortTtlServer.ready();
  let own: StartedServer | null = null;
  const api = await playwright.request.newContext({ baseURL: srv.baseURL });
  try {
    if (!(await setupNeeded(api))) {
      // Only when this test runs after something else set that server up (e.g. a filtered run).
      own = await startApiServer({ label: 'e2e-setup-page' });
      srv = own;
    }
    const page = await newPersonPage(browser, srv.baseURL);
    const report = new A11yReport();
    await page.goto('/');
    await expect(page).toHaveURL(/\/setup$/);
    await expect(page.getByRole('heading', { name: 'First-run setup', level: 1 })).toBeVisible();
    await report.scan(page, 'setup');
    await field(page, 'Admin password').fill('short');
    await page.getByRole('button', { name: 'Create admin and sign in' }).click();
    await expect(page.getByText('Strength: Too short')).toBeVisible();
    await report.scan(page, 'setup (validation errors)');
    await page.context().close();
    await verdict(report);
  } finally {
    await api.dispose();
    await own?.stop();
  }
});
