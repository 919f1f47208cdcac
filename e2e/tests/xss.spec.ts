import { ensureSetup, registerUser, strongPassword } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { adminRecoveryRow, adminRow, field, newPersonPage, openAdminTab, signInFast } from '../support/ui';
import { expectNoInjectedMarkup, guardAgainstXss } from '../support/xss-guard';

skipWithoutChromium();

/** The classic payload from the issue, verbatim. */
const IMG = '<img src=x onerror=alert(1)>';
/** Canary payloads: they would set window.__xss if they ever ran. */
const SVG = '<svg onload="window.__xss=1">';
const SCRIPT = '<script>window.__xss=1</script>';

/**
 * User-supplied strings (a secret's name and value, a rotation reason, an admin's rejection
 * note, a recovery requester's user agent) render as literal text everywhere they are shown: the vault, the user's request list,
 * the admin console and the audit log. No dialog opens, the canary is never set and the page's
 * CSP never has to block anything.
 */
test('user-supplied strings render as text in the vault, the request list, the admin console and the audit log', async ({
  page,
  browser,
  request,
  server,
}) => {
  test.setTimeout(90_000);
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const found: string[] = [];
  await guardAgainstXss(page.context(), 'user', found);
  const adminPage = await newPersonPage(browser, server.baseURL);
  await guardAgainstXss(adminPage.context(), 'admin', found);

  const secretName = IMG;
  const secretValue = `${SCRIPT}\n${SVG}`;
  const reason = IMG;
  const note = `${SVG} ${SCRIPT}`;

  await test.step('vault: a secret named with markup is listed, revealed and confirmed as text', async () => {
    await signInFast(page, user);
    await page.getByRole('button', { name: 'Add your first secret' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a secret' });
    await field(dialog, 'Name').fill(secretName);
    await field(dialog, 'Value').fill(secretValue);
    await dialog.getByRole('button', { name: 'Save secret' }).click();
    await expect(dialog).toBeHidden();

    const item = page.getByRole('list', { name: 'Secrets' }).getByRole('listitem', { name: secretName, exact: true });
    await expect(item.getByTestId('secret-name')).toHaveText(secretName);
    await item.getByRole('button', { name: `Reveal ${secretName}` }).click();
    await expect(item.getByTestId('secret-value')).toBeVisible();
    expect(await item.getByTestId('secret-value').textContent()).toBe(secretValue);

    await item.getByRole('button', { name: `Delete ${secretName}` }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete secret?' });
    await expect(confirm).toContainText(`Delete ${secretName}? This cannot be undone.`);
    await confirm.getByRole('button', { name: 'Keep it' }).click();
    await expect(confirm).toBeHidden();

    // After a reload too (the list comes back from the server, not from the form's state).
    await page.reload();
    await expect(page.getByTestId('secret-name')).toHaveText([secretName]);
    await expectNoInjectedMarkup(page);
  });

  await test.step("the user's request list shows a reason with markup as text", async () => {
    await page.goto('/rotation_request');
    await field(page, 'Reason').fill(reason);
    await page.getByRole('button', { name: 'Request key rotation' }).click();
    const card = page.getByTestId('rotation-request');
    await expect(card.getByTestId('rotation-status')).toHaveText('Pending approval');
    await expect(card).toContainText(`Reason: ${reason}`);
    await expectNoInjectedMarkup(page);
  });

  await test.step('the admin console shows the reason as text, in the row and in the approve dialog', async () => {
    await signInFast(adminPage, admin, '/admin/key_rotation_management');
    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('row-reason')).toHaveText(`Reason: ${reason}`);
    await row.getByRole('button', { name: 'Approve' }).click();
    const approve = adminPage.getByRole('dialog', { name: 'Approve key rotation' });
    await expect(approve).toContainText(`Reason: ${reason}`);
    await approve.getByRole('button', { name: 'Cancel' }).click();
    await expect(approve).toBeHidden();
    await expectNoInjectedMarkup(adminPage);
  });

  await test.step("the admin rejects with a note containing markup; both sides see it as text", async () => {
    await adminRow(adminPage, user.email).getByRole('button', { name: 'Reject' }).click();
    const reject = adminPage.getByRole('dialog', { name: 'Reject key rotation' });
    await field(reject, 'Reason for rejection').fill(note);
    await reject.getByRole('button', { name: 'Reject request' }).click();
    await expect(reject).toBeHidden();

    await openAdminTab(adminPage, 'History');
    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('row-reason')).toHaveText(`Reason: ${reason}`);
    await expect(row).toContainText(`Note: ${note}`);
    await row.getByRole('button', { name: 'Show timeline' }).click();
    await expect(row.getByLabel('Status timeline').getByText(note, { exact: true })).toBeVisible();
    await expectNoInjectedMarkup(adminPage);

    await page.reload();
    const card = page.getByTestId('rotation-request');
    await expect(card.getByTestId('rotation-status')).toHaveText('Rejected');
    await expect(card).toContainText(`Administrator's note: ${note}`);
    await expectNoInjectedMarkup(page);
  });

  await test.step('the audit log shows the note (inside the event details) as text', async () => {
    await adminPage.goto('/admin/audit');
    await adminPage.getByLabel('Action', { exact: true }).fill('rotation.rejected');
    await adminPage.getByRole('button', { name: 'Apply filters' }).click();
    const row = adminPage.getByRole('table', { name: 'Audit events' }).getByRole('row').filter({ hasText: admin.email });
    await expect(row.filter({ hasText: JSON.stringify({ note }) })).toHaveCount(1);
    await expectNoInjectedMarkup(adminPage);
  });

  await test.step("a recovery request's user agent (anyone can send one, signed out) shows as text in the admin console", async () => {
    const userAgent = `${IMG} ${SVG}`;
    const res = await request.post('/api/recovery/request', {
      headers: { 'user-agent': userAgent },
      data: { email: user.email, newPassword: strongPassword() },
    });
    expect(res.status()).toBe(202);
    await adminPage.goto('/admin/key_rotation_management?kind=recovery');
    const row = adminRecoveryRow(adminPage, user.email);
    await expect(row.getByTestId('row-requester')).toContainText(userAgent);
    await expectNoInjectedMarkup(adminPage);
  });

  // Give a late violation report or dialog a moment to arrive before the verdict.
  await page.waitForTimeout(250);
  expect(found, 'dialogs, canary writes or CSP violations seen while showing user data').toEqual([]);
  await adminPage.context().close();
});
