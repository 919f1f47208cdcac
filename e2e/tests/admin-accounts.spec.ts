import { ensureSetup, strongPassword, uniqueEmail } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { field, newPersonPage, signIn, signInFast } from '../support/ui';

skipWithoutChromium();

/** /admin/admins: an admin hands the admin master key to a new administrator. */

test('an admin adds another administrator; a wrong own password adds nobody; the new admin reaches the console', async ({
  page,
  browser,
  request,
  server,
}) => {
  test.setTimeout(90_000); // every submit is an argon2 derivation (or two) on the server
  const admin = await ensureSetup(request);
  const email = uniqueEmail('admin');
  const password = strongPassword();

  await signInFast(page, admin, '/admin/key_rotation_management');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administrators' }).click();
  await expect(page).toHaveURL(/\/admin\/admins$/);
  await expect(page.getByRole('heading', { name: 'Administrators', level: 1 })).toBeVisible();
  await expect(page.getByText('A new administrator shares the admin master key')).toBeVisible();

  const form = page.getByRole('form', { name: 'Add an administrator' });
  const submit = form.getByRole('button', { name: 'Add administrator' });
  const error = page.getByRole('alert');
  const ownPassword = field(form, 'Your admin password');

  // Client-side validation from the shared schema, before anything is sent.
  await field(form, 'Email').fill(email);
  await field(form, 'Password').fill('short');
  await field(form, 'Confirm password').fill('different');
  await submit.click();
  await expect(form.getByText('Strength: Too short')).toBeVisible();
  await expect(field(form, 'Password')).toHaveAttribute('data-invalid', 'true');
  await expect(field(form, 'Confirm password')).toHaveAttribute('data-invalid', 'true');
  await expect(form.getByText('The passwords do not match')).toBeVisible();
  await expect(ownPassword).toHaveAttribute('data-invalid', 'true'); // required

  // A wrong own password: refused, said so, nobody added.
  await field(form, 'Password').fill(password);
  await field(form, 'Confirm password').fill(password);
  await ownPassword.fill(`${admin.password}-wrong`);
  await submit.click();
  await expect(error).toHaveText('Your admin password is not correct. No administrator was added.', { timeout: 20_000 });
  await expect(ownPassword).toHaveAttribute('data-invalid', 'true');
  await expect(ownPassword).toHaveValue(''); // the wrong password is not kept
  await expect(ownPassword).toBeFocused();
  await expect(page.getByRole('status').filter({ hasText: 'Administrator added' })).toHaveCount(0);
  expect((await request.post('/api/auth/login', { data: { email, password } })).status()).toBe(401);

  // The right one: added, named, and the form is cleared.
  await ownPassword.fill(admin.password);
  await submit.click();
  const added = page.getByRole('status').filter({ hasText: 'Administrator added' });
  await expect(added).toContainText(`${email} is now an administrator`, { timeout: 20_000 });
  await expect(error).toHaveCount(0);
  for (const name of ['Email', 'Password', 'Confirm password', 'Your admin password']) {
    await expect(field(form, name)).toHaveValue('');
  }
  expect(page.url()).not.toContain(password);

  // The same email again: taken.
  await field(form, 'Email').fill(email);
  await field(form, 'Password').fill(strongPassword());
  await field(form, 'Confirm password').fill(await field(form, 'Password').inputValue());
  await ownPassword.fill(admin.password);
  await submit.click();
  await expect(error).toHaveText('An account with that email already exists. No administrator was added; use another email.', {
    timeout: 20_000,
  });
  await expect(field(form, 'Email')).toHaveAttribute('aria-invalid', 'true'); // a TextInput; PasswordInputs carry data-invalid
  await expect(added).toHaveCount(0);

  // The new admin signs in and has the admin console.
  const other = await newPersonPage(browser, server.baseURL);
  await signIn(other, { email, password });
  await other.goto('/admin/key_rotation_management');
  await expect(other.getByRole('heading', { name: 'Key rotation management', level: 1 })).toBeVisible();
  await expect(other.getByRole('button', { name: 'Admin menu' })).toBeVisible();
  await expect(other.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administrators' })).toBeVisible();
  await other.context().close();
});
