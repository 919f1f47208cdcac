import {
  approveRotation,
  bearer,
  completeSetup,
  ensureSetup,
  login,
  myRotation,
  registerUser,
  requestRotation,
  setupNeeded,
} from '../support/api';
import { SHORT_TOKEN_TTL_SECONDS, expect, skipWithoutChromium, test } from '../support/fixtures';
import { accountMenu, adminRow, field, newPersonPage, signInFast } from '../support/ui';

skipWithoutChromium();

/** The ways a rotation goes wrong, as a person meets them in the browser. */

test('a wrong temporary password says how many tries are left, and the right one still works', async ({ page, request }) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const token = await requestRotation(request, user, 'Routine yearly rotation');
  const { tempPassword } = await approveRotation(request, admin, token.id);

  await signInFast(page, user, `/key_rotation_with_token?tokenId=${token.id}`);
  await expect(field(page, 'Rotation token id')).toHaveValue(token.id);
  const temp = field(page, 'Temporary password');
  const error = page.getByRole('alert');

  await temp.fill(`${tempPassword}-wrong`);
  await field(page, 'Current password').fill(user.password);
  await page.getByRole('button', { name: 'Rotate my keys' }).click();
  await expect(error).toHaveText('The temporary password is not correct. 4 tries left before the token is revoked.');
  await expect(temp).toHaveAttribute('data-invalid', 'true'); // the field at fault is marked

  await temp.fill('not-it-either');
  await page.getByRole('button', { name: 'Rotate my keys' }).click();
  await expect(error).toHaveText('The temporary password is not correct. 3 tries left before the token is revoked.');
  expect((await myRotation(request, await login(request, user), token.id)).attemptsLeft).toBe(3);

  // The token survives wrong tries while some are left.
  await temp.fill(tempPassword);
  await page.getByRole('button', { name: 'Rotate my keys' }).click();
  await expect(page.getByTestId('rotation-result').getByRole('heading', { name: 'Key rotation complete' })).toBeVisible({
    timeout: 30_000,
  });
});

test('a rejection and its reason reach the user', async ({ page, browser, request, server }) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const token = await requestRotation(request, user, 'I think my password leaked');
  const why = `No evidence of a leak; ask the security desk first (case ${Date.now()}).`;

  const adminPage = await newPersonPage(browser, server.baseURL);
  await signInFast(adminPage, admin, '/admin/key_rotation_management');
  const row = adminRow(adminPage, user.email);
  await expect(row.getByTestId('fingerprint')).toHaveText(token.fingerprint);
  await row.getByRole('button', { name: 'Reject' }).click();
  const dialog = adminPage.getByRole('dialog', { name: 'Reject key rotation' });
  await expect(dialog.getByTestId('fingerprint')).toHaveText(token.fingerprint);
  // An empty reason is refused before anything is sent.
  await dialog.getByRole('button', { name: 'Reject request' }).click();
  await expect(dialog).toBeVisible();
  await field(dialog, 'Reason for rejection').fill(why);
  await dialog.getByRole('button', { name: 'Reject request' }).click();
  await expect(dialog).toBeHidden();
  await expect(adminPage.getByRole('status').filter({ hasText: `Rejected the request from ${user.email}.` })).toBeVisible();
  await expect(row).toHaveCount(0);
  await adminPage.context().close();

  await signInFast(page, user, '/rotation_request');
  const card = page.getByTestId('rotation-request');
  await expect(card.getByTestId('rotation-status')).toHaveText('Rejected');
  await expect(card).toContainText(`Administrator's note: ${why}`);
  const timeline = card.getByLabel('Status timeline');
  await expect(timeline.getByText('Rejected', { exact: true })).toBeVisible();
  await expect(timeline).toContainText(`by ${admin.email}`);
  // Nothing is open any more: the user may ask again.
  await expect(page.getByRole('button', { name: 'Request key rotation' })).toBeVisible();
  await expect(card.getByRole('link', { name: 'Run key rotation' })).toHaveCount(0);
});

test('a non-admin who types an admin address gets no admin UI, and the API refuses anyway', async ({ page, request }) => {
  await ensureSetup(request);
  const user = await registerUser(request);
  const adminCalls: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/admin/api/')) adminCalls.push(r.url());
  });

  await signInFast(page, user);
  await expect(page.getByRole('button', { name: 'Admin menu' })).toHaveCount(0);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rotation management' })).toHaveCount(0);

  for (const path of ['/admin/key_rotation_management', '/admin/health', '/admin/audit', '/admin']) {
    await page.goto(path);
    await expect(page.getByRole('heading', { name: 'Not allowed', level: 1 })).toBeVisible();
    await expect(page.getByText('This page is only for administrators.')).toBeVisible();
    await expect(page.getByRole('tab')).toHaveCount(0);
    await expect(page.getByRole('heading', { name: /Key rotation management|System health|Audit log/ })).toHaveCount(0);
    await expect(page.getByRole('button', { name: 'Admin menu' })).toHaveCount(0);
    await expect(accountMenu(page)).toContainText(user.email); // still signed in, as the user
  }
  await page.getByRole('link', { name: 'Back to my vault' }).click();
  await expect(page.getByRole('heading', { name: 'Vault', level: 1 })).toBeVisible();
  expect(adminCalls, 'the SPA must not even ask the admin API for a non-admin').toEqual([]);

  // The API refuses the user whatever the client: the browser's cookie session and a bearer token.
  for (const [what, res] of [
    ['cookie GET rotation_requests', await page.request.get('/admin/api/rotation_requests')],
    ['cookie GET audit', await page.request.get('/admin/api/audit')],
    ['bearer GET rotation_requests', await request.get('/admin/api/rotation_requests', { headers: user.auth })],
    ['bearer GET rotation_status', await request.get('/admin/api/rotation_status', { headers: user.auth })],
    ['bearer GET audit', await request.get('/admin/api/audit', { headers: user.auth })],
    [
      'bearer POST approve_rotation',
      await request.post(`/admin/api/approve_rotation/${crypto.randomUUID()}`, {
        headers: user.auth,
        data: { adminPassword: user.password },
      }),
    ],
  ] as const) {
    expect(res.status(), what).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code, what).toBe('FORBIDDEN');
  }
});

test('an approved token that expires before use: the execution page says so', async ({ browser, playwright, shortTtlServer, server }) => {
  test.setTimeout(150_000); // the short-TTL server may still be initialising its database
  const srv = await shortTtlServer.ready();
  const api = await playwright.request.newContext({ baseURL: srv.baseURL });
  try {
    const creds = { ...server.admin, setupCode: srv.setupCode };
    const admin = (await setupNeeded(api)) ? await completeSetup(api, creds) : await login(api, server.admin);
    const user = await registerUser(api);
    const token = await requestRotation(api, user, 'Rotation that will be left to expire');
    const approved = await approveRotation(api, admin, token.id);
    const ttl = (Date.parse(approved.expiresAt) - Date.now()) / 1000;
    expect(ttl).toBeLessThanOrEqual(SHORT_TOKEN_TTL_SECONDS + 1);

    const page = await newPersonPage(browser, srv.baseURL);
    await signInFast(page, user, `/key_rotation_with_token?tokenId=${token.id}`);
    await expect(page.getByTestId('fingerprint')).toHaveText(token.fingerprint);
    // The countdown runs out on screen…
    await expect(page.getByTestId('expiry-countdown')).toContainText('Expired', { timeout: (SHORT_TOKEN_TTL_SECONDS + 5) * 1000 });
    await field(page, 'Temporary password').fill(approved.tempPassword);
    await field(page, 'Current password').fill(user.password);
    await page.getByRole('button', { name: 'Rotate my keys' }).click();
    // …and the server refuses the token with a message a person understands.
    await expect(page.getByRole('alert')).toHaveText('This token expired before it was used. Request a new key rotation.');
    await page.getByRole('link', { name: 'Request a new key rotation' }).click();
    await expect(page).toHaveURL(/\/rotation_request$/);
    await expect(page.getByTestId('rotation-request').getByTestId('rotation-status')).toHaveText('Expired');
    await expect(page.getByRole('button', { name: 'Request key rotation' })).toBeVisible();

    // The user's API session is still fine: nothing was rotated.
    const res = await api.get('/api/secrets', { headers: bearer(user.session.token) });
    expect(res.status()).toBe(200);
    await page.context().close();
  } finally {
    await api.dispose();
  }
});
