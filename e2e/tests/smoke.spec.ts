import { getSecret, listSecrets, login, strongPassword, uniqueEmail } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { accountMenu, expectOnSignIn, expectSignedIn, field, signIn, signOut } from '../support/ui';

skipWithoutChromium();

/**
 * The whole first-run story in a real browser against the real app:
 * setup → logout → register → login → add a secret → reveal → logout.
 * Runs in the `first-run` project, before every other spec (setup happens once per server).
 */
test('first-run setup, register, login, add and reveal a secret, logout', async ({ page, request, server }) => {
  const user = { email: uniqueEmail('smoke'), password: strongPassword() };
  const secret = { name: `Smoke DB password ${Date.now()}`, value: `s3cr3t-${crypto.randomUUID()}` };

  await test.step('a fresh server sends every page to first-run setup', async () => {
    await page.goto('/');
    await expect(page).toHaveURL(/\/setup$/);
    await expect(page.getByRole('heading', { name: 'First-run setup', level: 1 })).toBeVisible();
  });

  await test.step('setup creates the first admin and signs them in', async () => {
    await field(page, 'Setup code').fill(server.setupCode);
    await field(page, 'Admin email').fill(server.admin.email);
    await field(page, 'Admin password').fill(server.admin.password);
    await field(page, 'Confirm password').fill(server.admin.password);
    await page.getByRole('button', { name: 'Create admin and sign in' }).click();
    await expectSignedIn(page, server.admin.email);
    await expect(page.getByRole('heading', { name: 'Vault', level: 1 })).toBeVisible();
  });

  await test.step('the admin signs out', async () => {
    await signOut(page);
    // Setup is over: its page now leads to sign-in.
    await page.goto('/setup');
    await expectOnSignIn(page);
  });

  await test.step('a user registers', async () => {
    await page.getByRole('link', { name: 'Create one' }).click();
    await expect(page.getByRole('heading', { name: 'Create your account', level: 1 })).toBeVisible();
    await field(page, 'Email').fill(user.email);
    await field(page, 'Password').fill(user.password);
    await field(page, 'Confirm password').fill(user.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expectSignedIn(page, user.email);
    await signOut(page);
  });

  await test.step('the user signs in', async () => {
    await signIn(page, user);
    await expect(page.getByRole('heading', { name: 'Vault', level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Your vault is empty' })).toBeVisible();
  });

  const item = page.getByRole('listitem', { name: secret.name });

  await test.step('the user adds a secret', async () => {
    await page.getByRole('button', { name: 'Add secret', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a secret' });
    await field(dialog, 'Name').fill(secret.name);
    await field(dialog, 'Value').fill(secret.value);
    await dialog.getByRole('button', { name: 'Save secret' }).click();
    await expect(dialog).toBeHidden();
    await expect(item).toBeVisible();
    await expect(page.getByText(secret.value)).toHaveCount(0); // hidden until revealed
  });

  await test.step('reveal shows the value', async () => {
    await item.getByRole('button', { name: `Reveal ${secret.name}` }).click();
    await expect(item.getByText(secret.value, { exact: true })).toBeVisible();
    await item.getByRole('button', { name: `Hide ${secret.name}` }).click();
    await expect(page.getByText(secret.value)).toHaveCount(0);
  });

  await test.step('the secret is stored server-side for that user only', async () => {
    const viaApi = await login(request, user);
    const mine = await listSecrets(request, viaApi);
    expect(mine.map((s) => s.name)).toEqual([secret.name]);
    expect((await getSecret(request, viaApi, mine[0]!.id)).value).toBe(secret.value);
    const admin = await login(request, server.admin);
    expect(await listSecrets(request, admin)).toEqual([]);
  });

  await test.step('the user signs out and the session is gone', async () => {
    await signOut(page);
    await expect(accountMenu(page)).toHaveCount(0);
    await expect(page.getByText(secret.name)).toHaveCount(0);
    // The browser's session cookie no longer works, and the vault sends back to sign-in.
    expect((await page.request.get('/api/auth/me')).status()).toBe(401);
    await page.goto('/');
    await expectOnSignIn(page);
  });
});
