import {
  adminRecoveries,
  createSecret,
  ensureSetup,
  login,
  recoveryNotices,
  registerUser,
  requestRecovery,
  requestRotation,
  strongPassword,
} from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import {
  adminRecoveryRow,
  adminRow,
  expectOnSignIn,
  expectSecretValues,
  expectSignInRefused,
  field,
  filterAdminKind,
  newPersonPage,
  openAdminTab,
  signIn,
  signInFast,
  signOut,
} from '../support/ui';

skipWithoutChromium();

const CONFIRM = 'I confirmed this request and its fingerprint with the user through a channel I trust';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Account recovery through the escrow, two people in two browser contexts:
 * the user forgot their password → files a request with a new one and reads the fingerprint →
 * the admin sees the same words, confirms and approves → the user completes it with the new
 * password → signs in with it and reads every secret unchanged → is told an administrator opened
 * the recovery copy → the old password is refused → the admin finalizes the recovery's rotation.
 */
test('account recovery end to end: request, approve, complete, new password, notice, finalize', async ({
  page,
  browser,
  request,
  server,
}) => {
  test.setTimeout(120_000);
  const admin = await ensureSetup(request);
  const [user, other] = await Promise.all([registerUser(request), registerUser(request)]);
  // Someone else's key rotation waits beside the recovery in the admin's queue.
  await requestRotation(request, other, 'Routine rotation');
  const newPassword = strongPassword();
  const secrets = [
    { name: 'Prod DB password', value: `pg-${crypto.randomUUID()}` },
    // Several lines and non-ASCII must survive the re-encryption under the new key.
    { name: 'Recovery codes', value: `1. ${crypto.randomUUID()}\n2. ünïcødé ✓ 🔑\n3.   spaced   out  ` },
    { name: 'Deploy key', value: `ssh-ed25519 AAAA${crypto.randomUUID().replaceAll('-', '')}` },
  ];
  for (const s of secrets.slice(0, 2)) await createSecret(request, user, s);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseURL });

  await test.step('the user adds a secret in the browser, then signs out', async () => {
    await signInFast(page, user);
    const s = secrets[2]!;
    await page.getByRole('button', { name: 'Add secret', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a secret' });
    await field(dialog, 'Name').fill(s.name);
    await field(dialog, 'Value').fill(s.value);
    await dialog.getByRole('button', { name: 'Save secret' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(secrets.length);
    await signOut(page);
  });

  let fingerprint = '';
  let requestId = '';
  await test.step('"Forgot password?": the user files a request with a new password and reads the fingerprint', async () => {
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await expect(page).toHaveURL(/\/forgot_password$/);
    await expect(page.getByRole('heading', { name: 'Forgot your password?', level: 1 })).toBeVisible();
    await field(page, 'Email').fill(user.email);
    await field(page, 'New password').fill(newPassword);
    await expect(page.getByText(/Strength: (Good|Strong)/)).toBeVisible();
    await field(page, 'Confirm new password').fill(newPassword);
    await page.getByRole('button', { name: 'Request account recovery' }).click();

    await expect(page.getByRole('heading', { name: 'Recovery requested', level: 1 })).toBeVisible();
    await expect(page.getByRole('status')).toContainText(
      'Contact your administrator and read them this fingerprint. Once they approve, complete the recovery with the new password you just chose.',
    );
    fingerprint = (await page.getByTestId('fingerprint').textContent())?.trim() ?? '';
    expect(fingerprint).toMatch(/^[a-z]+(-[a-z]+){3,5}$/);
    requestId = (await page.getByTestId('recovery-request-id').textContent())?.trim() ?? '';
    expect(requestId).toMatch(UUID);
    await expect(page.getByTestId('recovery-expiry')).toContainText('Expires in');
    // No password stays on the page.
    await expect(page.locator('input[type="password"]')).toHaveCount(0);

    await page.getByRole('button', { name: 'Copy request id' }).click();
    await expect(page.getByRole('button', { name: 'Copied', exact: true })).toBeVisible();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(requestId);

    const [pending] = (await adminRecoveries(request, admin, 'pending')).filter((r) => r.id === requestId);
    expect(pending?.userEmail).toBe(user.email);
    expect(pending?.fingerprint).toBe(fingerprint);
  });

  await test.step('before approval, completing it is refused with a plain message', async () => {
    await page.getByRole('link', { name: 'Complete the recovery' }).click();
    await expect(page).toHaveURL(new RegExp(`/recover\\?request=${requestId}$`));
    await expect(page.getByRole('heading', { name: 'Complete account recovery', level: 1 })).toBeVisible();
    await expect(field(page, 'Request id')).toHaveValue(requestId);
    await field(page, 'New password').fill(newPassword);
    await page.getByRole('button', { name: 'Complete recovery' }).click();
    await expect(page.getByRole('alert')).toContainText('not approved yet');
  });

  const adminPage = await newPersonPage(browser, server.baseURL);
  await test.step('the admin sees the Recovery row with the same fingerprint and approves it after confirming', async () => {
    await signInFast(adminPage, admin, '/admin/key_rotation_management');
    // Both kinds in one list by default, each row saying which it is.
    const row = adminRecoveryRow(adminPage, user.email);
    await expect(row.getByTestId('row-kind')).toHaveText('Recovery');
    await expect(adminRow(adminPage, other.email).getByTestId('row-kind')).toHaveText('Rotation');
    await filterAdminKind(adminPage, 'Rotation');
    await expect(adminRow(adminPage, other.email)).toBeVisible();
    await expect(row).toHaveCount(0);
    await filterAdminKind(adminPage, 'Recovery');
    await expect(adminPage).toHaveURL(/kind=recovery/);
    await expect(adminRow(adminPage, other.email)).toHaveCount(0);

    await expect(row.getByTestId('row-kind')).toHaveText('Recovery');
    await expect(row.getByTestId('recovery-status')).toHaveText('Pending approval');
    await expect(row.getByTestId('fingerprint')).toHaveText(fingerprint);
    await expect(row.getByTestId('row-role')).toHaveText('User');
    await expect(row.getByTestId('row-requester')).toContainText('127.0.0.1');
    await expect(row.getByTestId('row-expiry')).toContainText('Expires in');
    await row.getByRole('button', { name: 'Approve' }).click();

    const dialog = adminPage.getByRole('dialog', { name: 'Approve account recovery' });
    await expect(dialog.getByTestId('fingerprint')).toHaveText(fingerprint);
    await expect(dialog).toContainText(user.email);
    const submit = dialog.getByRole('button', { name: 'Approve recovery' });
    await expect(submit).toBeDisabled();
    await field(dialog, 'Your admin password').fill(admin.password);
    await expect(submit).toBeDisabled();
    await dialog.getByRole('checkbox', { name: CONFIRM }).check();
    await expect(submit).toBeEnabled();
    await submit.click();
    await expect(dialog).toBeHidden();
    await expect(adminPage.getByRole('status').filter({ hasText: `Approved the recovery of ${user.email}.` })).toBeVisible();
    await expect(row).toHaveCount(0);

    await openAdminTab(adminPage, 'Approved');
    const approved = adminRecoveryRow(adminPage, user.email);
    await expect(approved.getByTestId('recovery-status')).toHaveText('Approved');
    await expect(approved.getByTestId('row-attempts')).toHaveText('5 tries left');
    await expect(approved.getByRole('button', { name: 'Reject' })).toBeVisible();
    await expect(approved.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  });

  await test.step('the user completes the recovery with the new password (a wrong one first)', async () => {
    await field(page, 'New password').fill(`${newPassword} typo`);
    await page.getByRole('button', { name: 'Complete recovery' }).click();
    await expect(page.getByRole('alert')).toHaveText(
      'That is not the new password you chose for this request. 4 tries left before the request is revoked.',
    );
    await field(page, 'New password').fill(newPassword);
    await page.getByRole('button', { name: 'Complete recovery' }).click();

    const result = page.getByTestId('recovery-result');
    await expect(result.getByRole('heading', { name: 'Recovery complete' })).toBeVisible({ timeout: 30_000 });
    await expect(result).toContainText(`Your vault was re-keyed: ${secrets.length} secrets re-encrypted under a new key`);
    await expect(result).toContainText('All your sessions were signed out');
    // The session the user was registered with through the API is one of them.
    expect((await request.get('/api/secrets', { headers: user.auth })).status()).toBe(401);
    await result.getByRole('link', { name: 'Sign in' }).click();
    await expectOnSignIn(page);
  });

  await test.step('the new password opens the vault and every secret is unchanged', async () => {
    await signIn(page, { email: user.email, password: newPassword });
    await expectSecretValues(page, secrets);
  });

  await test.step('the user is told an administrator opened the recovery copy, and dismisses it', async () => {
    const notice = page.getByRole('alert').filter({ hasText: 'opened your recovery copy' });
    await expect(notice).toHaveCount(1);
    await expect(notice).toContainText(`An administrator (${admin.email}) opened your recovery copy on `);
    await expect(notice).toContainText(`(request ${requestId.slice(0, 8)}).`);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    await expect(notice).toHaveCount(0);
    await page.reload();
    await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(secrets.length);
    await expect(page.getByRole('alert').filter({ hasText: 'opened your recovery copy' })).toHaveCount(0);
    expect(await recoveryNotices(request, await login(request, { email: user.email, password: newPassword }))).toEqual([]);
  });

  await test.step('the old password is refused', async () => {
    await signOut(page);
    await expectSignInRefused(page, user);
  });

  await test.step('the admin finalizes the rotation the recovery ran (kind Recovery, no restore)', async () => {
    await adminPage.reload();
    await openAdminTab(adminPage, 'Awaiting finalization');
    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('row-kind')).toHaveText('Recovery');
    await expect(row.getByTestId('rotation-status')).toHaveText('Completed');
    await expect(row).toContainText(`${secrets.length} secrets re-encrypted`);
    await expect(row.getByRole('button', { name: 'Restore' })).toHaveCount(0);
    await row.getByRole('button', { name: 'Finalize' }).click();
    const dialog = adminPage.getByRole('dialog', { name: 'Finalize key rotation' });
    await field(dialog, 'Your admin password').fill(admin.password);
    await dialog.getByRole('button', { name: 'Finalize', exact: true }).click();
    await expect(dialog).toBeHidden();
    await expect(adminPage.getByRole('status').filter({ hasText: `Finalized the rotation of ${user.email}.` })).toBeVisible();

    await openAdminTab(adminPage, 'History');
    const done = adminRecoveryRow(adminPage, user.email);
    await expect(done.getByTestId('recovery-status')).toHaveText('Completed');
    await done.getByRole('button', { name: 'Show timeline' }).click();
    const timeline = done.getByLabel('Status timeline');
    for (const s of ['Requested', 'Approved', 'Completed']) await expect(timeline.getByText(s, { exact: true })).toBeVisible();
    await expect(timeline).toContainText(`by ${admin.email}`);
  });

  await adminPage.context().close();
});

/** An admin's own recovery needs another admin; a request can be rejected with a reason. */
test('an admin cannot approve their own recovery, and can reject it', async ({ page, request }) => {
  const admin = await ensureSetup(request);
  const filed = await requestRecovery(request, admin.email, strongPassword());

  await signInFast(page, admin, '/admin/key_rotation_management?kind=recovery');
  const row = adminRecoveryRow(page, admin.email);
  await expect(row.getByTestId('fingerprint')).toHaveText(filed.fingerprint);
  await expect(row.getByTestId('row-role')).toHaveText('Admin');
  await row.getByRole('button', { name: 'Approve' }).click();
  const approve = page.getByRole('dialog', { name: 'Approve account recovery' });
  await expect(approve).toContainText('their share of the admin master key is handed over too');
  await approve.getByRole('checkbox', { name: CONFIRM }).check();
  await field(approve, 'Your admin password').fill(admin.password);
  await approve.getByRole('button', { name: 'Approve recovery' }).click();
  await expect(approve.getByRole('alert')).toHaveText(
    'You cannot approve the recovery of your own account. Another administrator has to approve it.',
  );
  await approve.getByRole('button', { name: 'Cancel' }).click();
  await expect(approve).toBeHidden();

  await row.getByRole('button', { name: 'Reject' }).click();
  const reject = page.getByRole('dialog', { name: 'Reject account recovery' });
  await field(reject, 'Reason for rejection').fill('Not requested by the account owner.');
  await reject.getByRole('button', { name: 'Reject request' }).click();
  await expect(reject).toBeHidden();
  await expect(page.getByRole('status').filter({ hasText: `Rejected the recovery request of ${admin.email}.` })).toBeVisible();
  await expect(row).toHaveCount(0);

  await openAdminTab(page, 'History');
  const rejected = page.getByRole('listitem', { name: `Recovery request from ${admin.email}` }).filter({ hasText: filed.fingerprint });
  await expect(rejected.getByTestId('recovery-status')).toHaveText('Rejected');
  await expect(rejected).toContainText('Not requested by the account owner.');
  expect((await adminRecoveries(request, admin, 'rejected')).find((r) => r.id === filed.requestId)?.status).toBe('rejected');
});

/** "This wasn't me": the owner, signed in, is told of a pending request for their account and cancels it. */
test('the owner is told of a pending recovery request for their account and cancels it', async ({ page, request }) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  // Someone who knows the address files a request with a password of their own.
  const filed = await requestRecovery(request, user.email, strongPassword());

  await signInFast(page, user);
  const notice = page.getByRole('alert').filter({ hasText: 'Someone asked to recover your account' });
  await expect(notice).toContainText(`(request ${filed.requestId.slice(0, 8)})`);
  await expect(notice).toContainText('127.0.0.1');
  await expect(notice).toContainText('No administrator has approved it.');
  await notice.getByRole('button', { name: 'Cancel request' }).click();
  await expect(notice).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Vault', level: 1 })).toBeVisible();
  await expect(page.getByTestId('recovery-notice')).toHaveCount(0);

  const [cancelled] = (await adminRecoveries(request, admin, 'cancelled')).filter((r) => r.id === filed.requestId);
  expect(cancelled?.status).toBe('cancelled');
  // The requester can no longer complete it, even after an admin would have looked at it.
  const res = await request.post('/api/recovery/complete', { data: { requestId: filed.requestId, newPassword: strongPassword() } });
  expect(res.status()).toBe(409);
});
