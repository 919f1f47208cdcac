import { createSecret, ensureSetup, registerUser, strongPassword } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import {
  accountMenu,
  expectSecretValues,
  expectSignInRefused,
  expectSignedIn,
  field,
  signIn,
  signInFast,
  signOut,
} from '../support/ui';

skipWithoutChromium();

/**
 * Self-service password change from the account page: the key stays, so every secret reads the
 * same afterwards; the old password and every other session stop working; this tab stays in.
 */
test('change password: account menu → Account, wrong then right current password, old refused, new works', async ({
  page,
  request,
}) => {
  test.setTimeout(90_000);
  await ensureSetup(request);
  const user = await registerUser(request);
  const newPassword = strongPassword();
  const secrets = [
    { name: 'Prod DB password', value: `pg-${crypto.randomUUID()}` },
    { name: 'Notes', value: `line 1\nünïcødé ✓ 🔑\n${crypto.randomUUID()}` },
  ];
  for (const s of secrets) await createSecret(request, user, s);

  await signInFast(page, user);
  await accountMenu(page).click();
  await page.getByRole('menuitem', { name: 'Account' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible();
  const recovery = page.getByRole('region', { name: 'Account recovery' });
  await expect(recovery).toContainText('administrators can recover this vault through an escrow copy of its key');
  await expect(recovery).toContainText('They never learn your new password');
  await expect(recovery).toContainText('You will always be told');

  const form = page.getByRole('region', { name: 'Change password' });
  await test.step('a wrong current password changes nothing', async () => {
    await field(form, 'Current password').fill('not my password at all');
    await field(form, 'New password').fill(newPassword);
    await expect(form.getByText(/Strength: (Good|Strong)/)).toBeVisible();
    await field(form, 'Confirm new password').fill(newPassword);
    await form.getByRole('button', { name: 'Change password' }).click();
    await expect(form.getByRole('alert')).toHaveText('Your current password is not correct. Nothing was changed.');
    await expect(field(form, 'Current password')).toBeFocused();
    // Still signed in, and the API session is untouched.
    await expectSignedIn(page, user.email);
    expect((await request.get('/api/secrets', { headers: user.auth })).status()).toBe(200);
  });

  await test.step('the right one changes it; other sessions end, this one stays', async () => {
    await field(form, 'Current password').fill(user.password);
    await form.getByRole('button', { name: 'Change password' }).click();
    await expect(form.getByRole('status')).toContainText('Password changed; other sessions were signed out');
    await expect(page.locator('input[type="password"]').first()).toHaveValue('');
    // The API session the user registered with was another session.
    expect((await request.get('/api/secrets', { headers: user.auth })).status()).toBe(401);
    // This tab adopted its new session: it keeps working, unsafe requests (CSRF) included.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Vault' }).click();
    await expectSecretValues(page, secrets);
    await page.getByRole('button', { name: 'Add secret', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a secret' });
    await field(dialog, 'Name').fill('Added after the change');
    await field(dialog, 'Value').fill('still works');
    await dialog.getByRole('button', { name: 'Save secret' }).click();
    await expect(dialog).toBeHidden();
    secrets.push({ name: 'Added after the change', value: 'still works' });
  });

  await test.step('after signing out, the old password is refused and the new one opens every secret', async () => {
    await signOut(page);
    await expectSignInRefused(page, user);
    await signIn(page, { email: user.email, password: newPassword });
    await expectSecretValues(page, secrets);
  });
});
