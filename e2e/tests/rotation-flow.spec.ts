import { auditOfRotation, createSecret, ensureSetup, login, myRotations, registerUser, strongPassword } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { accountMenu, adminRow, expectOnSignIn, field, newPersonPage, openAdminTab, signIn } from '../support/ui';

skipWithoutChromium();

/**
 * The seed's whole key rotation, two people in two browser contexts:
 * user requests → admin approves and reads the temporary password once → user executes →
 * old password refused, new one works, every secret intact → admin finalizes → history and
 * audit show each step.
 */
test('key rotation end to end: request, approve, execute, re-login, finalize, history and audit', async ({
  page,
  browser,
  request,
  server,
}) => {
  test.setTimeout(120_000);
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const newPassword = strongPassword();
  const reason = `Laptop left in a taxi on ${new Date().toISOString().slice(0, 10)}; rotating to be safe.`;
  const secrets = [
    { name: 'Prod DB password', value: `pg-${crypto.randomUUID()}` },
    { name: 'Stripe API key', value: `sk_live_${crypto.randomUUID().replaceAll('-', '')}` },
    // Arranged through the API: several lines and non-ASCII must survive re-encryption too.
    { name: 'Recovery codes', value: `1. ${crypto.randomUUID()}\n2. ünïcødé ✓ 🔑\n3.   spaced   out  ` },
  ];
  await createSecret(request, user, secrets[2]!);

  const adminPage = await newPersonPage(browser, server.baseURL);
  const userItem = (name: string) => page.getByRole('list', { name: 'Secrets' }).getByRole('listitem', { name, exact: true });

  await test.step('the user adds secrets in the vault', async () => {
    await signIn(page, user);
    for (const s of secrets.slice(0, 2)) {
      await page.getByRole('button', { name: 'Add secret', exact: true }).click();
      const dialog = page.getByRole('dialog', { name: 'Add a secret' });
      await field(dialog, 'Name').fill(s.name);
      await field(dialog, 'Value').fill(s.value);
      await dialog.getByRole('button', { name: 'Save secret' }).click();
      await expect(dialog).toBeHidden();
      await expect(userItem(s.name)).toBeVisible();
    }
    await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(3);
  });

  let fingerprint = '';
  let tokenId = '';
  await test.step('the user requests a rotation with a reason and sees the fingerprint', async () => {
    await accountMenu(page).click();
    await page.getByRole('menuitem', { name: 'Key Rotation' }).click();
    await expect(page).toHaveURL(/\/rotation_request$/);
    await expect(page.getByRole('heading', { name: 'Key rotation', level: 1 })).toBeVisible();
    await expect(page.getByText('You have not requested a key rotation yet.')).toBeVisible();

    const reasonBox = field(page, 'Reason');
    await reasonBox.fill(reason);
    await expect(page.getByTestId('reason-count')).toHaveText(`${[...reason].length} / 500 characters`);
    await page.getByRole('button', { name: 'Request key rotation' }).click();

    const card = page.getByTestId('rotation-request');
    await expect(card).toHaveCount(1);
    await expect(card.getByTestId('rotation-status')).toHaveText('Pending approval');
    await expect(card).toContainText(reason);
    fingerprint = (await card.getByTestId('fingerprint').textContent())?.trim() ?? '';
    expect(fingerprint).toMatch(/^[a-z]+(-[a-z]+){3}$/); // four words
    // The open-request notice shows the same words, large, to read aloud.
    await expect(page.getByRole('status').filter({ hasText: 'You have an open request' }).getByTestId('fingerprint')).toHaveText(fingerprint);

    const [mine] = await myRotations(request, user);
    expect(mine?.fingerprint).toBe(fingerprint);
    tokenId = mine!.id;
  });

  let tempPassword = '';
  await test.step('the admin sees it under pending with the same fingerprint and approves it', async () => {
    await adminPage.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseURL });
    await signIn(adminPage, admin);
    await adminPage.getByRole('button', { name: 'Admin menu' }).click();
    await adminPage.getByRole('menuitem', { name: 'Key Rotation' }).click();
    await expect(adminPage).toHaveURL(/\/admin\/key_rotation_management$/);
    await expect(adminPage.getByRole('tab', { name: /^Pending/ })).toHaveAttribute('aria-selected', 'true');

    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('rotation-status')).toHaveText('Pending approval');
    await expect(row.getByTestId('fingerprint')).toHaveText(fingerprint);
    await expect(row.getByTestId('row-reason')).toContainText(reason);
    await row.getByRole('button', { name: 'Approve' }).click();

    const dialog = adminPage.getByRole('dialog', { name: 'Approve key rotation' });
    await expect(dialog.getByTestId('fingerprint')).toHaveText(fingerprint);
    await expect(dialog).toContainText(user.email);
    await field(dialog, 'Your admin password').fill(admin.password);
    await dialog.getByRole('button', { name: 'Approve', exact: true }).click();

    const shown = adminPage.getByRole('dialog', { name: 'Temporary password' });
    await expect(shown.getByRole('alert')).toContainText('This will not be shown again');
    await expect(shown.getByTestId('fingerprint')).toHaveText(fingerprint);
    await expect(shown.getByTestId('temp-password-expiry')).toContainText(/Expires in \d+ h|Expires in 1 d/);
    tempPassword = (await shown.getByTestId('temp-password').textContent())?.trim() ?? '';
    expect(tempPassword.length).toBeGreaterThanOrEqual(12);

    const copy = shown.getByRole('button', { name: 'Copy temporary password' });
    await expect(copy).toBeVisible();
    await copy.click();
    await expect(shown.getByRole('button', { name: 'Copied', exact: true })).toBeVisible();
    expect(await adminPage.evaluate(() => navigator.clipboard.readText())).toBe(tempPassword);

    await shown.getByRole('button', { name: 'I have copied it — close' }).click();
    await expect(shown).toBeHidden();
    // Shown once: nowhere on the page any more, and the row moved to "Approved".
    await expect(adminPage.getByText(tempPassword)).toHaveCount(0);
    await expect(row).toHaveCount(0);
    await openAdminTab(adminPage, 'Approved');
    await expect(adminRow(adminPage, user.email).getByTestId('rotation-status')).toHaveText('Approved');
    await expect(adminPage.getByText(tempPassword)).toHaveCount(0);
  });

  await test.step('the user opens the execution page with the token prefilled and rotates', async () => {
    await page.reload();
    const card = page.getByTestId('rotation-request');
    await expect(card.getByTestId('rotation-status')).toHaveText('Approved');
    await expect(card.getByTestId('expiry-countdown')).toContainText('Expires in');
    await card.getByRole('link', { name: 'Run key rotation' }).click();

    await expect(page).toHaveURL(/\/key_rotation_with_token\?tokenId=/);
    await expect(page.getByRole('heading', { name: 'Run key rotation', level: 1 })).toBeVisible();
    await expect(field(page, 'Rotation token id')).toHaveValue(tokenId);
    await expect(page.getByTestId('fingerprint')).toHaveText(fingerprint);

    await field(page, 'Temporary password').fill(tempPassword);
    await field(page, 'Current password').fill(user.password);
    await field(page, 'New password').fill(newPassword);
    await expect(page.getByText(/Strength: (Good|Strong)/)).toBeVisible();
    await field(page, 'Confirm new password').fill(newPassword);
    await page.getByRole('button', { name: 'Rotate my keys' }).click();

    const result = page.getByTestId('rotation-result');
    await expect(result.getByRole('heading', { name: 'Key rotation complete' })).toBeVisible({ timeout: 30_000 });
    await expect(result.getByTestId('result-secrets')).toHaveText('3');
    const t = (await myRotations(request, await login(request, { email: user.email, password: newPassword })))[0]!;
    expect(t.status).toBe('completed');
    await expect(result.getByTestId('result-key-version')).toHaveText(`v${t.fromKeyVersion + 1}`);
    expect(t.toKeyVersion).toBe(t.fromKeyVersion + 1);
    // The API session the user was registered with is one of the "other sessions" signed out.
    expect(Number(await result.getByTestId('result-sessions').textContent())).toBeGreaterThanOrEqual(1);
    expect((await request.get('/api/secrets', { headers: user.auth })).status()).toBe(401);
  });

  await test.step('the old password is refused, the new one works and every secret is intact', async () => {
    await page.getByRole('button', { name: 'Sign out and sign in again' }).click();
    await expectOnSignIn(page);
    await expect(page.getByRole('status').filter({ hasText: 'Your keys were rotated. Sign in with your new password.' })).toBeVisible();

    await field(page, 'Email').fill(user.email);
    await field(page, 'Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('alert')).toHaveText('That email and password do not match an account.');
    await expect(accountMenu(page)).toHaveCount(0);

    await signIn(page, { email: user.email, password: newPassword });
    await expect(page.getByRole('list', { name: 'Secrets' }).getByRole('listitem')).toHaveCount(secrets.length);
    for (const s of secrets) {
      const item = userItem(s.name);
      await item.getByRole('button', { name: `Reveal ${s.name}` }).click();
      const value = item.getByTestId('secret-value');
      await expect(value).toBeVisible();
      expect(await value.textContent()).toBe(s.value);
    }
  });

  await test.step('the admin finalizes the rotation after the password prompt', async () => {
    await adminPage.reload();
    await openAdminTab(adminPage, 'Awaiting finalization');
    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('rotation-status')).toHaveText('Completed');
    await expect(row).toContainText('3 secrets re-encrypted');
    await row.getByRole('button', { name: 'Finalize' }).click();

    const dialog = adminPage.getByRole('dialog', { name: 'Finalize key rotation' });
    await expect(dialog).toContainText(user.email);
    await field(dialog, 'Your admin password').fill(admin.password);
    await dialog.getByRole('button', { name: 'Finalize', exact: true }).click();
    await expect(dialog).toBeHidden();
    await expect(adminPage.getByRole('status').filter({ hasText: `Finalized the rotation of ${user.email}.` })).toBeVisible();
    await expect(row).toHaveCount(0);
  });

  const steps = ['Requested', 'Approved', 'Completed', 'Finalized'];

  await test.step('the history tab shows every step of the request', async () => {
    await openAdminTab(adminPage, 'History');
    const row = adminRow(adminPage, user.email);
    await expect(row.getByTestId('rotation-status')).toHaveText('Finalized');
    await expect(row.getByTestId('fingerprint')).toHaveText(fingerprint);
    await row.getByRole('button', { name: 'Show timeline' }).click();
    const timeline = row.getByLabel('Status timeline');
    await expect(timeline).toBeVisible();
    for (const s of steps) await expect(timeline.getByText(s, { exact: true })).toBeVisible();
    await expect(timeline).toContainText(`by ${admin.email}`);

    // The user's own list tells the same story.
    await page.goto('/rotation_request');
    const card = page.getByTestId('rotation-request');
    await expect(card.getByTestId('rotation-status')).toHaveText('Finalized');
    for (const s of steps) await expect(card.getByLabel('Status timeline').getByText(s, { exact: true })).toBeVisible();
  });

  await test.step('the audit log page shows requested, approved, completed and finalized', async () => {
    await adminPage.getByRole('button', { name: 'Admin menu' }).click();
    await adminPage.getByRole('menuitem', { name: 'Audit log' }).click();
    await expect(adminPage.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
    await expect(adminPage.getByTestId('audit-verdict')).toContainText('none were altered or removed');

    const table = adminPage.getByRole('table', { name: 'Audit events' });
    const expected: [string, string][] = [
      ['rotation.requested', user.email],
      ['rotation.approved', admin.email],
      ['rotation.completed', user.email],
      ['rotation.finalized', admin.email],
    ];
    for (const [action, actor] of expected) {
      // A text input with suggestions (a datalist): a combobox, not a plain textbox.
      await adminPage.getByLabel('Action', { exact: true }).fill(action);
      await adminPage.getByRole('button', { name: 'Apply filters' }).click();
      const row = table.getByRole('row').filter({ hasText: `rotation:${tokenId}` });
      await expect(row).toHaveCount(1);
      await expect(row).toContainText(action);
      await expect(row).toContainText(actor);
      await expect(row).toContainText('success');
    }
    // Exactly once each, in that order (per the API, oldest first).
    const wanted = new Set(expected.map(([a]) => a));
    const order = (await auditOfRotation(request, admin, tokenId))
      .filter((e) => e.outcome === 'success' && wanted.has(e.action))
      .map((e) => e.action);
    expect(order).toEqual([...wanted]);
  });

  await adminPage.context().close();
});
