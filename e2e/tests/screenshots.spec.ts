import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { createSecret, ensureSetup, myRotations, registerUser, requestRotation } from '../support/api';
import { E2E_DIR, REPO_ROOT } from '../support/env';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { adminRow, field, newPersonPage, openAdminTab, settle, signInFast } from '../support/ui';

skipWithoutChromium();

/**
 * Screenshots of the main screens, walked through as the product is used:
 *   - every one, full page, in e2e/test-results/screenshots/ (run artifacts, also attached to
 *     the HTML report);
 *   - the best ones, at 1280×800 (the viewport, < 300 KB each), in docs/screenshots/ for the
 *     README. Those are written when missing or when E2E_UPDATE_DOCS_SCREENSHOTS=1, so an
 *     ordinary test run does not rewrite committed images.
 */
const ARTIFACTS = path.join(E2E_DIR, 'test-results', 'screenshots');
const DOCS = path.join(REPO_ROOT, 'docs', 'screenshots');
const DOCS_MAX_BYTES = 300 * 1024;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const updateDocs = process.env.E2E_UPDATE_DOCS_SCREENSHOTS === '1';

test.use({ viewport: DESKTOP });

async function shoot(page: Page, name: string, opts: { docs?: boolean; fullPage?: boolean } = {}): Promise<void> {
  await settle(page);
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: opts.fullPage ?? true, animations: 'disabled' });
  await test.info().attach(name, { path: file, contentType: 'image/png' });
  if (!opts.docs) return;
  const docsFile = path.join(DOCS, `${name}.png`);
  if (!updateDocs && existsSync(docsFile)) return;
  // The docs copy is one screen, so every image in the README has the same size.
  const viewportFile = path.join(ARTIFACTS, `${name}.viewport.png`);
  await page.screenshot({ path: viewportFile, fullPage: false, animations: 'disabled' });
  const size = statSync(viewportFile).size;
  expect(size, `${name}.png must stay under 300 KB for the repository`).toBeLessThan(DOCS_MAX_BYTES);
  mkdirSync(DOCS, { recursive: true });
  copyFileSync(viewportFile, docsFile);
}

test('screenshots of the main screens', async ({ page, browser, request, server }) => {
  test.setTimeout(120_000);
  const admin = await ensureSetup(request);
  const dana = await registerUser(request, { email: 'dana.whitfield@acme.test' });
  const secrets = [
    { name: 'Production database (Postgres)', value: 'postgres://app:Vq9-rT2x-Lm4p@db.internal:5432/app' },
    { name: 'Stripe secret key', value: `sk_live_${crypto.randomUUID().replaceAll('-', '')}` },
    { name: 'GitHub deploy token', value: `ghp_${crypto.randomUUID().replaceAll('-', '')}` },
    { name: 'AWS root account recovery codes', value: '7H2K-9QWE-4RTY\nP0LK-3MNB-8VCX\nZ1AS-6DFG-5HJK' },
    { name: 'Office Wi-Fi', value: 'correct horse battery staple' },
  ];
  for (const s of secrets) await createSecret(request, dana, s);
  // Someone else waiting in the admin's queue.
  const sam = await registerUser(request, { email: 'sam.okafor@acme.test' });
  await requestRotation(request, sam, 'New laptop; the old one was wiped and returned to IT.');

  await test.step('vault', async () => {
    await signInFast(page, dana);
    await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(secrets.length);
    const item = page.getByRole('listitem', { name: 'Production database (Postgres)' });
    await item.getByRole('button', { name: 'Reveal Production database (Postgres)' }).click();
    await expect(item.getByTestId('secret-value')).toBeVisible();
    await shoot(page, 'vault', { docs: true });
  });

  await test.step('vault on a phone', async () => {
    const phone = await newPersonPage(browser, server.baseURL, { viewport: PHONE, isMobile: true, hasTouch: true });
    await signInFast(phone, dana);
    await expect(phone.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(secrets.length);
    await shoot(phone, 'phone-vault', { docs: true, fullPage: false });
    await phone.getByRole('button', { name: 'Open navigation' }).click();
    await expect(phone.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Vault' })).toBeVisible();
    await shoot(phone, 'phone-vault-menu', { fullPage: false });
    await phone.context().close();
  });

  await test.step('rotation request', async () => {
    await page.goto('/rotation_request');
    await field(page, 'Reason').fill('Annual key rotation, as required by our security policy (SEC-12).');
    await page.getByRole('button', { name: 'Request key rotation' }).click();
    await expect(page.getByTestId('rotation-request').getByTestId('rotation-status')).toHaveText('Pending approval');
    await shoot(page, 'rotation-request', { docs: true });
  });

  const adminPage = await newPersonPage(browser, server.baseURL, { viewport: DESKTOP });
  let tempPassword = '';
  await test.step('admin: rotation management and the temporary password', async () => {
    await signInFast(adminPage, admin, '/admin/key_rotation_management');
    await expect(adminRow(adminPage, dana.email)).toBeVisible();
    await shoot(adminPage, 'admin-rotation-pending');
    await adminRow(adminPage, dana.email).getByRole('button', { name: 'Approve' }).click();
    const approve = adminPage.getByRole('dialog', { name: 'Approve key rotation' });
    await field(approve, 'Your admin password').fill(admin.password);
    await shoot(adminPage, 'admin-approve-dialog', { fullPage: false });
    await approve.getByRole('button', { name: 'Approve', exact: true }).click();
    const shown = adminPage.getByRole('dialog', { name: 'Temporary password' });
    tempPassword = (await shown.getByTestId('temp-password').textContent())?.trim() ?? '';
    await shoot(adminPage, 'admin-approve-temp-password', { docs: true, fullPage: false });
    await shown.getByRole('button', { name: 'I have copied it — close' }).click();
    await expect(shown).toBeHidden();
  });

  await test.step('rotation execution and its result', async () => {
    const [token] = await myRotations(request, dana);
    await page.goto(`/key_rotation_with_token?tokenId=${token!.id}`);
    await field(page, 'Temporary password').fill(tempPassword);
    await field(page, 'Current password').fill(dana.password);
    const newPassword = `${dana.password} rotated`;
    await field(page, 'New password').fill(newPassword);
    await field(page, 'Confirm new password').fill(newPassword);
    await shoot(page, 'rotation-execute');
    await page.getByRole('button', { name: 'Rotate my keys' }).click();
    await expect(page.getByTestId('rotation-result')).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('result-secrets')).toHaveText(String(secrets.length));
    await shoot(page, 'rotation-result', { docs: true });
  });

  await test.step('admin: finalization, history, health and audit', async () => {
    await adminPage.reload();
    await openAdminTab(adminPage, 'Awaiting finalization');
    await expect(adminRow(adminPage, dana.email)).toBeVisible();
    await shoot(adminPage, 'admin-rotation-awaiting');
    await adminRow(adminPage, dana.email).getByRole('button', { name: 'Finalize' }).click();
    const finalize = adminPage.getByRole('dialog', { name: 'Finalize key rotation' });
    await field(finalize, 'Your admin password').fill(admin.password);
    await finalize.getByRole('button', { name: 'Finalize', exact: true }).click();
    await expect(finalize).toBeHidden();
    await openAdminTab(adminPage, 'History');
    const row = adminRow(adminPage, dana.email);
    await row.getByRole('button', { name: 'Show timeline' }).click();
    await expect(row.getByLabel('Status timeline').getByText('Finalized', { exact: true })).toBeVisible();
    await shoot(adminPage, 'admin-history');

    await adminPage.goto('/admin/health');
    await expect(adminPage.getByTestId('audit-verdict')).toBeVisible();
    // Status shows the last full verify's verdict: run one so the shot shows a verified chain.
    await adminPage.getByRole('button', { name: 'Verify now' }).click();
    await expect(adminPage.getByTestId('audit-verified')).toContainText('none were altered or removed');
    await shoot(adminPage, 'admin-health');

    await adminPage.goto('/admin/audit');
    await expect(adminPage.getByRole('table', { name: 'Audit events' })).toBeVisible();
    await shoot(adminPage, 'admin-audit', { docs: true });
  });

  await adminPage.context().close();
});
