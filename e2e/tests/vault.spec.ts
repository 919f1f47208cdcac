import { createSecret, ensureSetup, registerUser } from '../support/api';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { signIn } from '../support/ui';

skipWithoutChromium();

/** State arranged through the API shortcuts, checked in the browser. */
test('a user sees only their own secrets, can filter them and reveal one', async ({ page, request }) => {
  await ensureSetup(request);
  const alice = await registerUser(request);
  const bob = await registerUser(request);
  const mine = [
    { name: 'GitHub token', value: `ghp_${crypto.randomUUID()}` },
    { name: 'Staging DB password', value: `pg-${crypto.randomUUID()}` },
  ];
  for (const s of mine) await createSecret(request, alice, s);
  await createSecret(request, bob, { name: 'Bob private note', value: 'not for alice' });

  await signIn(page, alice);
  const list = page.getByRole('list', { name: 'Secrets' });
  await expect(list.getByRole('listitem')).toHaveCount(2);
  for (const s of mine) await expect(list.getByRole('listitem', { name: s.name })).toBeVisible();
  await expect(page.getByText('Bob private note')).toHaveCount(0);

  await page.getByRole('searchbox', { name: 'Search secrets' }).fill('staging');
  await expect(list.getByRole('listitem')).toHaveCount(1);
  const item = list.getByRole('listitem', { name: 'Staging DB password' });
  await item.getByRole('button', { name: 'Reveal Staging DB password' }).click();
  await expect(item.getByText(mine[1]!.value, { exact: true })).toBeVisible();
});
